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

  it('bounds how long clients may take and how many may connect, with defaults', () => {
    expect(loadConfig({}).http).toEqual({
      requestTimeoutMs: 30_000,
      uploadTimeoutMs: 30 * 60_000,
      idleTimeoutMs: 30_000,
      maxConnections: 1000,
    });
    expect(
      loadConfig({
        REQUEST_TIMEOUT_SECONDS: '10',
        UPLOAD_TIMEOUT_SECONDS: '3600',
        IDLE_TIMEOUT_SECONDS: '5',
        MAX_CONNECTIONS: '64',
      }).http,
    ).toEqual({
      requestTimeoutMs: 10_000,
      uploadTimeoutMs: 3_600_000,
      idleTimeoutMs: 5_000,
      maxConnections: 64,
    });
    for (const [name, value] of [
      ['REQUEST_TIMEOUT_SECONDS', '0'],
      ['REQUEST_TIMEOUT_SECONDS', '1.5'],
      ['UPLOAD_TIMEOUT_SECONDS', '-1'],
      ['UPLOAD_TIMEOUT_SECONDS', '86401'],
      ['IDLE_TIMEOUT_SECONDS', 'forever'],
      ['MAX_CONNECTIONS', '0'],
      ['MAX_CONNECTIONS', 'lots'],
    ] as const) {
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).toThrow(new RegExp(name));
    }
  });

  it('reads what uploads may be and how often the server reconciles', () => {
    expect([loadConfig({}).accept, loadConfig({}).reconcileIntervalMs]).toEqual(['images', 3_600_000]);
    expect(loadConfig({ ACCEPT: 'any', RECONCILE_INTERVAL: '15m' })).toMatchObject({
      accept: 'any',
      reconcileIntervalMs: 900_000,
    });
    expect(loadConfig({ RECONCILE_INTERVAL: 'off' }).reconcileIntervalMs).toBeNull();
    // At least a minute: a reconcile lists the whole bucket.
    expect(loadConfig({ RECONCILE_INTERVAL: '5s' }).reconcileIntervalMs).toBe(60_000);
    expect(() => loadConfig({ RECONCILE_INTERVAL: 'hourly' })).toThrow(/RECONCILE_INTERVAL/);
    expect(() => loadConfig({ ACCEPT: 'everything' })).toThrow(/ACCEPT/);
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

  it('keeps the metadata in DATA_DIR/gallery.db unless DATABASE_URL names a PostgreSQL', () => {
    expect(loadConfig({ DATA_DIR: '/srv/gallery' }).database).toEqual({
      kind: 'sqlite',
      file: '/srv/gallery/gallery.db',
    });
    const external = { S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'photos' };
    const url = 'postgres://gallery:secret@db.internal:5432/gallery';
    expect(loadConfig({ ...external, DATABASE_URL: url }).database).toEqual({ kind: 'postgres', url });
    expect(() => loadConfig({ ...external, DATABASE_URL: 'mysql://db/gallery' })).toThrow(
      /DATABASE_URL: must start with postgres:\/\//,
    );
  });

  it('refuses PostgreSQL with the embedded store, which lives on one machine, and says what to set', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://db/gallery' })).toThrow(
      /DATABASE_URL: .*set S3_ENDPOINT and S3_BUCKET/,
    );
  });
});
