import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PACKAGE_ROOT } from '../server/config';

/**
 * The KServe/Triton `inference.GRPCInferenceService`, loaded from the
 * committed proto/grpc_predict_v2.proto. Messages are plain objects with the
 * proto's own snake_case field names; int64 values arrive as numbers (tensor
 * shapes and sizes are far below 2^53).
 */

export const PROTO_PATH = join(PACKAGE_ROOT, 'proto', 'grpc_predict_v2.proto');
export const SERVICE_NAME = 'inference.GRPCInferenceService';

export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

export function inferenceService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  return pkg.inference.GRPCInferenceService.service;
}

export interface InferParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
}

export interface TensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameter>;
  inputs: Array<{ name: string; datatype: string; shape: number[]; parameters: Record<string, InferParameter>; contents: TensorContents | null }>;
  outputs: Array<{ name: string; parameters: Record<string, InferParameter> }>;
  raw_input_contents: Buffer[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameter>;
  outputs: Array<{ name: string; datatype: string; shape: number[]; contents?: TensorContents }>;
  raw_output_contents: Buffer[];
}
