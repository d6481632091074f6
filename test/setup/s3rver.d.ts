// s3rver ships no type declarations: the part of its API the test setup uses (lib/s3rver.js: the S3rver class,
// its run() and close()).
declare module 's3rver' {
  export default class S3rver {
    constructor(opts: Record<string, unknown>);
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
