// Request validation beyond what Ajv does alone: integers sent as numeric strings (curl users), rules that
// involve two fields, and the reference builder's 422 body that names each bad field.
import type { TSchema } from '@sinclair/typebox';

import { type BuildRequest, LIMITS } from './schemas.js';

export interface FieldError {
  field: string;
  message: string;
  type: string;
}

/** A request that fails a rule; rendered as 422 {"detail":"Validation Error","errors":[...]}. */
export class RequestValidationError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    this.name = 'RequestValidationError';
  }
}

/**
 * Turns numeric strings into numbers wherever the schema wants an integer, in place. Anything else is left for
 * the schema to reject, so "12.5", "", "1e3" and "0x10" still fail as not-an-integer.
 */
export function coerceIntegerStrings(schema: TSchema, value: unknown): unknown {
  if (schema.type === 'integer' && typeof value === 'string' && /^\s*-?\d{1,15}\s*$/.test(value)) {
    return Number(value);
  }
  if (schema.type === 'object' && isPlainObject(value) && schema.properties) {
    for (const [key, sub] of Object.entries(schema.properties as Record<string, TSchema>)) {
      if (key in value) value[key] = coerceIntegerStrings(sub, value[key]);
    }
  }
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rules that span fields (checked after the schema). */
export function crossFieldErrors(r: BuildRequest): FieldError[] {
  const errors: FieldError[] = [];
  const space = r.index_parameters.space_type;
  // Binary accepts every space type: k-NN 3.2+ sends binary-quantized fields as binary with the field's own
  // space_type (l2 or innerproduct); Faiss searches binary indexes by Hamming distance whatever it says.
  if (r.data_type !== 'binary' && space === 'hamming') {
    errors.push({
      field: 'body.index_parameters.space_type',
      message: `space_type hamming is only for binary data, got data_type ${r.data_type}`,
      type: 'value_error',
    });
  }
  if (r.data_type !== 'binary' && r.dimension > LIMITS.maxDimension) {
    errors.push({
      field: 'body.dimension',
      message: `must be <= ${LIMITS.maxDimension} for ${r.data_type} data (only binary, in bits, goes up to ${LIMITS.maxBinaryDimension})`,
      type: 'less_than_equal',
    });
  }
  if (r.data_type === 'binary' && r.dimension % 8 !== 0) {
    errors.push({
      field: 'body.dimension',
      message: `binary dimension is in bits and must be a multiple of 8, got ${r.dimension}`,
      type: 'value_error',
    });
  }
  return errors;
}

/** The subset of an Ajv error this module reads. */
export interface AjvErrorLike {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

const TYPE_NAMES: Record<string, string> = {
  integer: 'int_type',
  number: 'float_type',
  string: 'string_type',
  boolean: 'bool_type',
  object: 'dict_type',
  array: 'list_type',
};

/** Maps Ajv errors to field errors in the reference builder's style (field = "body.a.b"). */
export function toFieldErrors(context: string, errors: readonly AjvErrorLike[]): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const path = e.instancePath.split('/').filter(Boolean);
    const p = e.params;
    let fe: FieldError;
    switch (e.keyword) {
      case 'required':
        fe = {
          field: join(context, [...path, String(p.missingProperty)]),
          message: 'Field required',
          type: 'missing',
        };
        break;
      case 'additionalProperties':
        fe = {
          field: join(context, [...path, String(p.additionalProperty)]),
          message: 'Extra inputs are not permitted',
          type: 'extra_forbidden',
        };
        break;
      case 'type':
        fe = {
          field: join(context, path),
          message: `must be ${String(p.type)}`,
          type: TYPE_NAMES[String(p.type)] ?? 'type_error',
        };
        break;
      case 'minimum':
      case 'exclusiveMinimum':
        fe = {
          field: join(context, path),
          message: `must be ${String(p.comparison)} ${String(p.limit)}`,
          type: 'greater_than_equal',
        };
        break;
      case 'maximum':
      case 'exclusiveMaximum':
        fe = {
          field: join(context, path),
          message: `must be ${String(p.comparison)} ${String(p.limit)}`,
          type: 'less_than_equal',
        };
        break;
      case 'enum':
        fe = {
          field: join(context, path),
          message: `must be one of: ${(p.allowedValues as unknown[]).join(', ')}`,
          type: 'enum',
        };
        break;
      case 'pattern':
        fe = { field: join(context, path), message: patternMessage(path), type: 'string_pattern_mismatch' };
        break;
      case 'minLength':
        fe = {
          field: join(context, path),
          message: `must have at least ${String(p.limit)} characters`,
          type: 'string_too_short',
        };
        break;
      case 'maxLength':
        fe = {
          field: join(context, path),
          message: `must have at most ${String(p.limit)} characters`,
          type: 'string_too_long',
        };
        break;
      default:
        fe = { field: join(context, path), message: e.message ?? 'is invalid', type: e.keyword };
    }
    const key = `${fe.field}|${fe.type}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(fe);
    }
  }
  return out;
}

function join(context: string, path: string[]): string {
  return [context, ...path].join('.');
}

function patternMessage(path: string[]): string {
  const field = path[path.length - 1];
  if (field === 'vector_path') return 'must end in .knnvec (and hold no control characters)';
  if (field === 'container_name') return 'must hold no "/" or control characters';
  return 'must hold no control characters';
}
