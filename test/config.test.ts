import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('config', () => {
  it('starts with working defaults and no environment at all', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe(path.resolve('./data'));
    expect(config.appOrigin).toBe('http://localhost:3000');
    expect(config.isSecureOrigin).toBe(false);
    expect(config.signup).toBe('invite');
    expect(config.maxUploadBytes).toBe(25 * 1024 * 1024);
    expect(config.s3).toBeUndefined();
  });

  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ SIGNUP: 'sometimes' })).toThrow(/SIGNUP/);
    expect(() => loadConfig({ APP_ORIGIN: 'photos.example.com' })).toThrow(/APP_ORIGIN/);
    expect(() => loadConfig({ TRUST_PROXY: 'maybe' })).toThrow(/TRUST_PROXY/);
    expect(() => loadConfig({ S3_ENDPOINT: 'http://minio:9000' })).toThrow(/S3_BUCKET/);
    expect(() => loadConfig({ PORT: '-1' })).toThrow(ConfigError);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', SIGNUP: '' }).port).toBe(3000);
  });

  it('derives cookie security from an https APP_ORIGIN and keeps only its origin', () => {
    const config = loadConfig({ APP_ORIGIN: 'https://photos.example.com/some/path' });
    expect(config.appOrigin).toBe('https://photos.example.com');
    expect(config.isSecureOrigin).toBe(true);
  });

  it('uses external S3 only when S3_ENDPOINT is set', () => {
    const config = loadConfig({
      S3_ENDPOINT: 'http://minio:9000',
      S3_BUCKET: 'photos',
      S3_ACCESS_KEY_ID: 'id',
      S3_SECRET_ACCESS_KEY: 'secret',
      S3_FORCE_PATH_STYLE: 'true',
    });
    expect(config.s3).toMatchObject({
      endpoint: 'http://minio:9000',
      publicEndpoint: 'http://minio:9000',
      bucket: 'photos',
      forcePathStyle: true,
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
    });
    expect(() =>
      loadConfig({ S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'photos', S3_ACCESS_KEY_ID: 'only-half' }),
    ).toThrow(/S3_SECRET_ACCESS_KEY/);
  });
});
