export type { AccessEntry } from './access-log.js';
export type { KeyGrant, KeyLookup } from './auth/sigv4.js';
export { loadOrCreateCredentials, type StoreCredentials } from './credentials.js';
export type { StoreChange } from './disk/objects.js';
export type { FormRefusal, FormRefusalPage } from './form-refusal.js';
export type { Logger } from './logger.js';
export { createS3Server, type S3Server, type S3ServerOptions } from './server.js';
export { requestTimeoutAnswer } from './timeout.js';
