// What to build, in the core's own words. The HTTP API maps k-NN's wire request (api/schemas.ts, snake_case) onto
// a JobSpec in one function (api/build.ts: jobSpecFrom); the CLI makes a BuildSpec from its arguments. Everything
// below the API (jobs/, pipeline/, builders/) reads these types and never the wire request, so the wire format
// can change without touching the core and the CLI has nothing to fake. RequestFields (below) is only the
// k-NN field names of a JobSpec: the shape the Redis backend persists, and what the API's mapping starts from.
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

/**
 * A JobSpec's fields under the names k-NN's build request gives them. The API validates requests of this shape
 * (api/schemas.ts BuildRequest has these fields and more) and the Redis backend stores jobs in it (the form every
 * version has stored, so replicas of different versions share one queue).
 */
export interface RequestFields {
  container_name: string;
  vector_path: string;
  doc_id_path: string;
  tenant_id: string;
  dimension: number;
  doc_count: number;
  data_type: DataType;
  index_parameters: {
    space_type: SpaceType;
    algorithm_parameters: { m: number; ef_construction: number; ef_search: number };
  };
  skip_stored_vectors: boolean;
}

/** The JobSpec these fields describe; every other key (unknown ones, repository_type, engine, ...) stays behind. */
export function specFromRequestFields(r: RequestFields): JobSpec {
  const p = r.index_parameters.algorithm_parameters;
  return {
    containerName: r.container_name,
    vectorPath: r.vector_path,
    docIdPath: r.doc_id_path,
    tenantId: r.tenant_id,
    dimension: r.dimension,
    docCount: r.doc_count,
    dataType: r.data_type,
    spaceType: r.index_parameters.space_type,
    m: p.m,
    efConstruction: p.ef_construction,
    efSearch: p.ef_search,
    skipStoredVectors: r.skip_stored_vectors,
  };
}

export function requestFieldsOf(s: JobSpec): RequestFields {
  return {
    container_name: s.containerName,
    vector_path: s.vectorPath,
    doc_id_path: s.docIdPath,
    tenant_id: s.tenantId,
    dimension: s.dimension,
    doc_count: s.docCount,
    data_type: s.dataType,
    index_parameters: {
      space_type: s.spaceType,
      algorithm_parameters: { m: s.m, ef_construction: s.efConstruction, ef_search: s.efSearch },
    },
    skip_stored_vectors: s.skipStoredVectors,
  };
}
