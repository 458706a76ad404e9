import Bowser from 'bowser';

/** "Firefox on Linux", "Safari on iOS": a User-Agent as a person names their browser. */
export function deviceOf(userAgent: string): string {
  if (!userAgent) return 'Unknown browser';
  const { browser, os } = Bowser.parse(userAgent);
  const name = browser.name || 'Unknown browser';
  return os.name ? `${name} on ${os.name}` : name;
}
