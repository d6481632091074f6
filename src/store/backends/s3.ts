// The s3:// blob store over @aws-sdk/client-s3: one client per process and configuration,
// conditional commits (IfNoneMatch "*"), multipart uploads through lib-storage for large shards.
import { createReadStream } from 'node:fs';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { DistillError } from '../../core/errors.js';
import type { S3Options } from '../api.js';
import { byKey, type BlobInfo, type BlobStore, type StaleUpload } from './blob-store.js';

const clients = new Map<string, S3Client>();

// The SDK prints an 8-line notice on every process under Node < 22 (@aws-sdk/core, dist-cjs/submodules/client,
// emitWarningIfUnsupportedVersion); it reads this variable and stays quiet. A user who sets it keeps their value.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * Where the SDK's default credential chain looked (@aws-sdk/credential-provider-node, defaultProvider: fromEnv,
 * fromSSO, fromIni, fromProcess, fromTokenFile, then the container or EC2 instance metadata endpoint).
 */
const CREDENTIAL_SOURCES =
  'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary keys); AWS_PROFILE naming a profile ' +
  'in ~/.aws/credentials or ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE move them), with keys, SSO or ' +
  'credential_process; AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN; AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or ' +
  '_FULL_URI; the EC2 instance metadata service (off with AWS_EC2_METADATA_DISABLED)';

/** Resolves flags over the standard AWS environment variables (AWS_ENDPOINT_URL_S3, AWS_REGION, ...). */
export function resolveS3Options(opts: S3Options = {}): S3Options {
  const env = process.env;
  const endpoint = opts.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const pathStyleEnv = env.AWS_S3_FORCE_PATH_STYLE ?? env.DISTILLERY_S3_FORCE_PATH_STYLE;
  const checksumsEnv = env.AWS_REQUEST_CHECKSUM_CALCULATION?.toUpperCase();
  return {
    endpoint,
    region: opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // S3-compatible servers addressed by endpoint rarely support virtual-host buckets.
    forcePathStyle:
      opts.forcePathStyle ??
      (pathStyleEnv !== undefined ? pathStyleEnv === 'true' || pathStyleEnv === '1' : endpoint !== undefined),
    checksums:
      opts.checksums ??
      (checksumsEnv === 'WHEN_SUPPORTED' || checksumsEnv === 'WHEN_REQUIRED' ? checksumsEnv : undefined),
    credentials: opts.credentials,
    maxAttempts: opts.maxAttempts ?? 6,
  };
}

function clientKey(o: S3Options): string {
  const { multipartBytes: _ignored, ...rest } = o;
  return JSON.stringify(rest);
}

/** The process-wide client for one configuration (the SDK's connection pool is per client). */
export function s3Client(opts: S3Options = {}): S3Client {
  const o = resolveS3Options(opts);
  const key = clientKey(o);
  let client = clients.get(key);
  if (!client) {
    const config: S3ClientConfig = {
      region: o.region,
      forcePathStyle: o.forcePathStyle,
      maxAttempts: o.maxAttempts,
      // 'standard' retries throttling (503 SlowDown) and dropped connections with jittered exponential backoff.
      retryMode: 'standard',
    };
    if (o.endpoint) config.endpoint = o.endpoint;
    if (o.credentials) config.credentials = o.credentials;
    if (o.checksums) {
      config.requestChecksumCalculation = o.checksums;
      config.responseChecksumValidation = o.checksums;
    }
    client = new S3Client(config);
    clients.set(key, client);
  }
  return client;
}

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(uri);
  if (!m || !m[1]) {
    throw new DistillError('E_USAGE', `malformed S3 URI ${uri}`, {
      expected: 's3://bucket/prefix',
      found: uri,
      subject: uri,
    });
  }
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  return { bucket: m[1], prefix: prefix ? `${prefix}/` : '' };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class S3BlobStore implements BlobStore {
  private constructor(
    readonly uri: string,
    readonly bucket: string,
    readonly prefix: string,
    readonly client: S3Client,
    private readonly multipartBytes = 16 * 1024 * 1024,
  ) {}

  static async open(uri: string, opts?: S3Options): Promise<S3BlobStore> {
    const { bucket, prefix } = parseS3Uri(uri);
    return new S3BlobStore(uri, bucket, prefix, s3Client(opts), opts?.multipartBytes);
  }

  /** For tests and embedding: a store over a caller-made client (e.g. one with fault-injecting middleware). */
  static withClient(uri: string, client: S3Client, multipartBytes?: number): S3BlobStore {
    const { bucket, prefix } = parseS3Uri(uri);
    return new S3BlobStore(uri, bucket, prefix, client, multipartBytes);
  }

  describe(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${key}`;
  }

  localPath(): null {
    return null;
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      if (res.Body) return await res.Body.transformToByteArray();
    } catch (err) {
      if (isMissingKey(err)) return null;
      throw this.error('read', key, err);
    }
    throw new DistillError('E_IO', `S3 read ${this.describe(key)} returned no body`, { subject: this.describe(key) });
  }

  async head(key: string): Promise<{ size: number } | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return { size: Number(res.ContentLength ?? 0) };
    } catch (err) {
      if (isMissingKey(err) && !isMissingBucket(err)) return null;
      throw this.error('stat', key, err);
    }
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: data, IfNoneMatch: '*' }),
        );
        return true;
      } catch (err) {
        const status = httpStatus(err);
        if (status === 412 || errName(err) === 'PreconditionFailed') return false;
        // 409 ConditionalRequestConflict: a concurrent conditional write is in flight; try again.
        if (status === 409 && attempt < 8) {
          await sleep(Math.random() * Math.min(2000, 50 * 2 ** attempt));
          continue;
        }
        throw this.error('write', key, err);
      }
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: data }));
    } catch (err) {
      throw this.error('write', key, err);
    }
  }

  async putFile(key: string, file: string, size: number): Promise<void> {
    try {
      if (size < this.multipartBytes) {
        const { readFile } = await import('node:fs/promises');
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: await readFile(file) }),
        );
        return;
      }
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.k(key), Body: createReadStream(file) },
        partSize: Math.max(5 * 1024 * 1024, this.multipartBytes),
        queueSize: 4,
        // A failed upload is aborted here; only a crashed process leaves parts behind, for `distill cache gc`.
        leavePartsOnError: false,
      });
      await upload.done();
    } catch (err) {
      throw this.error('write', key, err);
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.k(prefix), ContinuationToken: token }),
        );
        for (const o of res.Contents ?? []) {
          if (o.Key === undefined) continue;
          out.push({
            key: o.Key.slice(this.prefix.length),
            size: Number(o.Size ?? 0),
            modified: o.LastModified ?? new Date(0),
          });
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.error('list', prefix, err);
    }
    return out.sort(byKey);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
    } catch (err) {
      throw this.error('delete', key, err);
    }
  }

  async staleUploads(prefix: string): Promise<StaleUpload[]> {
    const out: StaleUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.k(prefix),
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const u of res.Uploads ?? []) {
          // Without both, an upload can be neither named nor aborted.
          if (u.Key === undefined || u.UploadId === undefined) continue;
          out.push({
            key: u.Key.slice(this.prefix.length),
            uploadId: u.UploadId,
            initiated: u.Initiated ?? new Date(0),
          });
        }
        keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
        uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
      } while (keyMarker);
    } catch (err) {
      // Some S3-compatible servers (s3rver among them) do not implement ListMultipartUploads.
      if (httpStatus(err) === 501 || errName(err) === 'NotImplemented') return [];
      throw this.error('list uploads in', prefix, err);
    }
    return out;
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.k(key), UploadId: uploadId }),
      );
    } catch (err) {
      throw this.error('abort upload', key, err);
    }
  }

  private error(op: string, key: string, err: unknown): DistillError {
    const where = this.describe(key);
    const status = httpStatus(err);
    const name = errName(err);
    const msg = String((err as Error)?.message ?? err);
    if (isMissingBucket(err)) {
      return new DistillError(
        'E_STORE_UNREACHABLE',
        `bucket "${this.bucket}" does not exist (while trying to ${op} ${where})`,
        {
          subject: `s3://${this.bucket}`,
          hint: 'create the bucket or fix the URI; for an S3-compatible server, set `s3.endpoint` or AWS_ENDPOINT_URL_S3',
          cause: err,
        },
      );
    }
    if (
      status === 403 ||
      status === 401 ||
      /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden|ExpiredToken/.test(name)
    ) {
      return new DistillError(
        'E_STORE_DENIED',
        `access to bucket "${this.bucket}" denied (while trying to ${op} ${where})`,
        {
          found: `${name || status}: ${msg}`,
          subject: `s3://${this.bucket}`,
          hint: 'check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that the policy allows s3:GetObject, s3:PutObject and s3:ListBucket on it',
          cause: err,
        },
      );
    }
    if (name === 'CredentialsProviderError' || /Could not load credentials/.test(msg)) {
      return new DistillError('E_STORE_DENIED', `no AWS credentials were found (while trying to ${op} ${where})`, {
        found: msg,
        subject: `s3://${this.bucket}`,
        hint: `set credentials in one of the places the AWS SDK looks: ${CREDENTIAL_SOURCES}`,
        cause: err,
      });
    }
    const code = (err as NodeJS.ErrnoException)?.code ?? name;
    if (
      status === undefined ||
      /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|TimeoutError|NetworkingError/.test(String(code) + msg)
    ) {
      return new DistillError(
        'E_STORE_UNREACHABLE',
        `cannot reach bucket "${this.bucket}" (while trying to ${op} ${where})`,
        {
          found: msg,
          subject: `s3://${this.bucket}`,
          hint: 'check the network and the endpoint (`s3.endpoint` / AWS_ENDPOINT_URL_S3) and region (AWS_REGION)',
          cause: err,
        },
      );
    }
    return new DistillError('E_IO', `S3 ${op} ${where} failed`, {
      found: `${name} (${status}): ${msg}`,
      subject: where,
      cause: err,
    });
  }
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function errName(err: unknown): string {
  return String((err as { name?: string; Code?: string })?.name ?? (err as { Code?: string })?.Code ?? '');
}

function isMissingBucket(err: unknown): boolean {
  return errName(err) === 'NoSuchBucket';
}

function isMissingKey(err: unknown): boolean {
  const n = errName(err);
  return n === 'NoSuchKey' || n === 'NotFound' || (httpStatus(err) === 404 && n !== 'NoSuchBucket');
}
