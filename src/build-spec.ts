// What to build, in the core's own words. The HTTP API maps k-NN's wire request (api/schemas.ts, snake_case) onto
// a JobSpec in one function (api/build.ts: jobSpecFrom); the CLI makes a BuildSpec from its arguments. Everything
// below the API (jobs/, pipeline/, builders/) reads these types and never the wire request, so the wire format
// can change without touching the core and the CLI has nothing to fake.
// It lives at the top of src/ because both sides of the worker boundary use it: the scheduler (jobs/), the worker
// (pipeline/), the CLI and the API.
import type { DataType, SpaceType } from './vectors/types.js';

/** One index: the vectors' shape and the HNSW parameters the builders use (already clamped: builders/hnsw-params.ts). */
export interface BuildSpec {
  /** Elements per vector (bits for binary). */
  readonly dimension: number;
  readonly docCount: number;
  readonly dataType: DataType;
  /** As requested; binary data is built and searched by Hamming distance whatever it says (pipeline/run-job.ts). */
  readonly spaceType: SpaceType;
  readonly m: number;
  readonly efConstruction: number;
  readonly efSearch: number;
  /** Write the graph only (a layout over Faiss null storage), not the vectors. */
  readonly skipStoredVectors: boolean;
}

/** A build the service runs for a client: what to build, where the blobs are, and whose build it is. */
export interface JobSpec extends BuildSpec {
  /** The bucket (S3) or the local store's sub-folder holding both blobs; the index is written next to the vectors. */
  readonly containerName: string;
  readonly vectorPath: string;
  readonly docIdPath: string;
  /** The client (k-NN: its cluster name); with vectorPath it names the job (jobs/job.ts: jobIdFor). */
  readonly tenantId: string;
}
