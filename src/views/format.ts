const dateTime = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});

export const formatDateTime = (ms: number) => `${dateTime.format(new Date(ms))} UTC`;
