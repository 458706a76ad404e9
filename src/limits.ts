// The lengths of what people type: checked by the services, stated to the browser as minlength and
// maxlength on the forms.

/** No deliverable address is longer (RFC 5321's limit on a forward path). */
export const EMAIL_MAX = 254;
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 256;
/** A share link's optional password: short is fine, the link itself is the secret. */
export const SHARE_PASSWORD_MIN = 4;
export const TITLE_MAX = 200;
