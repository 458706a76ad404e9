/**
 * An e-mail address that wraps where a reader would break it (before the @ and after each dot),
 * not in the middle of a word: a narrow table column breaks "ana.lopez@example.com" as
 * "ana.lopez / @example.com", never "ana.lo / pez@exa…".
 */
export function Email({ address }: { address: string }) {
  const parts = address.split(/(?=@)|(?<=\.)/);
  return (
    <span class="email">
      {parts.map((part, i) => (
        <>
          {i > 0 ? <wbr /> : null}
          {part}
        </>
      ))}
    </span>
  );
}
