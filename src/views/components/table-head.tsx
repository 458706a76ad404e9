/**
 * A table's column headings; `actions` adds a last column for each row's buttons, named for
 * screen readers only.
 */
export function TableHead({ columns, actions = false }: { columns: string[]; actions?: boolean }) {
  return (
    <thead>
      <tr>
        {columns.map((name) => (
          <th scope="col">{name}</th>
        ))}
        {actions ? (
          <th scope="col" class="actions">
            <span class="visually-hidden">Actions</span>
          </th>
        ) : null}
      </tr>
    </thead>
  );
}
