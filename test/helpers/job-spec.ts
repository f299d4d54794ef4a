// A JobSpec for tests below the API: the body k-NN sends (knnBuildBody, wire overrides), mapped as the API maps it.
import { jobSpecFrom } from '../../src/api/build.js';
import type { BuildRequest } from '../../src/api/schemas.js';
import type { JobSpec } from '../../src/build-spec.js';
import { knnBuildBody } from './knn-client.js';

export function jobSpecFor(wireOverrides: Record<string, unknown> = {}): JobSpec {
  return jobSpecFrom(knnBuildBody(wireOverrides) as unknown as BuildRequest).spec;
}
