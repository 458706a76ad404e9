import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** Debian's AWS CLI (package awscli), which CI installs. */
export const AWS = '/usr/bin/aws';

/**
 * The environment of an AWS CLI that reads nothing of the machine's own setup: its config and
 * home in `dir`, no credentials file, no instance metadata, no pager; path-style addressing in
 * us-east-1, with these keys.
 */
export function awsCliEnv(
  dir: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
): NodeJS.ProcessEnv {
  const config = path.join(dir, 'aws-config');
  writeFileSync(config, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
  return {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  };
}
