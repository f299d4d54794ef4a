// Vitest global set-up: starts what the whole suite shares (the S3 test server joins here, see storage).
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
