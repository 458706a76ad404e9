const SECTIONS = [
  ['/admin', 'Users'],
  ['/admin/invites', 'Invites'],
  ['/admin/changes', 'Changes'],
  ['/admin/audit', 'Audit log'],
  ['/admin/processing', 'Processing'],
] as const;

export function AdminNav({ current }: { current: (typeof SECTIONS)[number][0] }) {
  return (
    <nav aria-label="Admin" class="subnav">
      {SECTIONS.map(([href, label]) => (
        <a href={href} aria-current={href === current ? 'page' : undefined}>
          {label}
        </a>
      ))}
    </nav>
  );
}
