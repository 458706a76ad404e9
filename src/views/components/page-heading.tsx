import { ErrorMessage, Notice } from './messages.js';

/** A page's way back, its title, and what the last action said (a notice or an error). */
export function PageHeading(props: {
  back: { href: string; label: string };
  title: string;
  notice?: string | undefined;
  error?: string | undefined;
}) {
  return (
    <>
      <p>
        <a href={props.back.href}>← {props.back.label}</a>
      </p>
      <h1>{props.title}</h1>
      <Notice message={props.notice} />
      <ErrorMessage message={props.error} />
    </>
  );
}
