/**
 * The `google.rpc` error details Herald attaches to its statuses, described by hand.
 *
 * Herald's proto imports only the well-known types, so the googleapis files are not part
 * of generation. The five messages Herald sends (ErrorInfo, RetryInfo, BadRequest,
 * ResourceInfo, QuotaFailure) are declared here with the same names, numbers and types
 * as `google/rpc/error_details.proto`, which is all the wire format needs; connect's
 * `ConnectError.findDetails` then decodes them from `grpc-status-details-bin`.
 */

import { create, createFileRegistry, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import {
  type Duration,
  type FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
} from "@bufbuild/protobuf/wkt";

/** Why the call failed, as a stable reason in a domain, with context. */
export type ErrorInfo = Message<"google.rpc.ErrorInfo"> & {
  reason: string;
  domain: string;
  metadata: { [key: string]: string };
};

/** When the call may be tried again. */
export type RetryInfo = Message<"google.rpc.RetryInfo"> & {
  retryDelay?: Duration;
};

/** One invalid field of the request, named by its path (`event_type`, `requests[2].channels`). */
export type FieldViolation = Message<"google.rpc.BadRequest.FieldViolation"> & {
  field: string;
  description: string;
};

/** Every invalid field of the request. */
export type BadRequest = Message<"google.rpc.BadRequest"> & {
  fieldViolations: FieldViolation[];
};

/** The resource that was missing or already existed. */
export type ResourceInfo = Message<"google.rpc.ResourceInfo"> & {
  resourceType: string;
  resourceName: string;
  owner: string;
  description: string;
};

/** One quota that was exceeded. */
export type QuotaViolation = Message<"google.rpc.QuotaFailure.Violation"> & {
  subject: string;
  description: string;
};

/** Every quota the call exceeded. */
export type QuotaFailure = Message<"google.rpc.QuotaFailure"> & {
  violations: QuotaViolation[];
};

const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;
const { STRING, MESSAGE } = FieldDescriptorProto_Type;

function field(
  name: string,
  number: number,
  type: FieldDescriptorProto_Type,
  label = OPTIONAL,
  typeName?: string,
): MessageInitShape<typeof FieldDescriptorProtoSchema> {
  return { name, number, type, label, ...(typeName === undefined ? {} : { typeName }) };
}

const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "google/rpc/error_details.proto",
    package: "google.rpc",
    syntax: "proto3",
    dependency: ["google/protobuf/duration.proto"],
    messageType: [
      {
        name: "ErrorInfo",
        field: [
          field("reason", 1, STRING),
          field("domain", 2, STRING),
          field("metadata", 3, MESSAGE, REPEATED, ".google.rpc.ErrorInfo.MetadataEntry"),
        ],
        nestedType: [
          {
            name: "MetadataEntry",
            field: [field("key", 1, STRING), field("value", 2, STRING)],
            options: { mapEntry: true },
          },
        ],
      },
      {
        name: "RetryInfo",
        field: [field("retry_delay", 1, MESSAGE, OPTIONAL, ".google.protobuf.Duration")],
      },
      {
        name: "QuotaFailure",
        field: [field("violations", 1, MESSAGE, REPEATED, ".google.rpc.QuotaFailure.Violation")],
        nestedType: [
          { name: "Violation", field: [field("subject", 1, STRING), field("description", 2, STRING)] },
        ],
      },
      {
        name: "BadRequest",
        field: [field("field_violations", 1, MESSAGE, REPEATED, ".google.rpc.BadRequest.FieldViolation")],
        nestedType: [
          {
            name: "FieldViolation",
            field: [field("field", 1, STRING), field("description", 2, STRING)],
          },
        ],
      },
      {
        name: "ResourceInfo",
        field: [
          field("resource_type", 1, STRING),
          field("resource_name", 2, STRING),
          field("owner", 3, STRING),
          field("description", 4, STRING),
        ],
      },
    ],
  }),
  // A DescFile is named without its `.proto` suffix.
  (name) =>
    name === `${file_google_protobuf_duration.name}.proto` ? file_google_protobuf_duration : undefined,
);

/** Narrows a registry entry to its message shape; the declarations above guarantee it. */
function message<Shape extends Message>(typeName: string): GenMessage<Shape> {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) {
    throw new Error(`${typeName} is missing from the error detail descriptors`);
  }
  return desc as unknown as GenMessage<Shape>;
}

export const ErrorInfoSchema = message<ErrorInfo>("google.rpc.ErrorInfo");
export const RetryInfoSchema = message<RetryInfo>("google.rpc.RetryInfo");
export const BadRequestSchema = message<BadRequest>("google.rpc.BadRequest");
export const ResourceInfoSchema = message<ResourceInfo>("google.rpc.ResourceInfo");
export const QuotaFailureSchema = message<QuotaFailure>("google.rpc.QuotaFailure");
