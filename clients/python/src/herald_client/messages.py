"""Python values into `herald.v1` requests, and results back: the part of the wrapper
that both clients (`Client`, `AsyncClient`) share and that performs no I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeAlias

from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2

from herald.v1 import herald_pb2 as pb
from herald_client.errors import FieldViolation, HeraldError, error_type, status_code

__all__ = ["UNSET", "Event", "JsonValue", "Unset", "json_value"]

JsonValue: TypeAlias = (
    None | bool | int | float | str | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
)
"""A value that becomes JSON: what `json.loads` returns, tuples and mappings included."""

# JSON numbers travel as doubles: integers beyond this lose digits.
_EXACT_INTEGER = 2**53


@dataclass(frozen=True)
class Event:
    """One event of a `publish_batch`; the fields mean what `publish`'s do."""

    event_type: str
    payload: JsonValue | bytes
    content_type: str | None = None
    idempotency_key: str = ""
    channels: Sequence[str] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    tenant: str | None = None


class Unset(enum.Enum):
    """The default of `update_endpoint`'s fields: that field is left as it is."""

    UNSET = enum.auto()


UNSET = Unset.UNSET


def json_value(value: JsonValue) -> struct_pb2.Value:
    """A JSON value as a `google.protobuf.Value`.

    Raises:
        ValueError: an integer too large for a JSON number (a double) to hold exactly;
            send such payloads as bytes.
        TypeError: something that is not JSON.
    """
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int):
        if abs(value) > _EXACT_INTEGER:
            raise ValueError(f"{value} does not survive as a JSON number; send bytes instead")
        return struct_pb2.Value(number_value=value)
    if isinstance(value, float):
        return struct_pb2.Value(number_value=value)
    if isinstance(value, str):
        return struct_pb2.Value(string_value=value)
    if isinstance(value, Mapping):
        fields = {str(k): json_value(v) for k, v in value.items()}
        return struct_pb2.Value(struct_value=struct_pb2.Struct(fields=fields))
    if isinstance(value, Sequence):
        items = [json_value(v) for v in value]
        return struct_pb2.Value(list_value=struct_pb2.ListValue(values=items))
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def publish_request(event: Event, default_tenant: str) -> pb.PublishRequest:
    """The request publishing `event`: JSON payloads as JSON, bytes unchanged.

    Raises:
        ValueError: a content type with a JSON payload (JSON is sent as JSON).
    """
    request = pb.PublishRequest(
        event_type=event.event_type,
        idempotency_key=event.idempotency_key,
        channels=event.channels,
        metadata=event.metadata,
        tenant_id=default_tenant if event.tenant is None else event.tenant,
    )
    if isinstance(event.payload, (bytes, bytearray, memoryview)):
        request.raw.data = bytes(event.payload)
        request.raw.content_type = event.content_type or "application/json"
    elif event.content_type is not None:
        raise ValueError("content_type goes with a bytes payload; JSON is sent as JSON")
    else:
        request.json.CopyFrom(json_value(event.payload))
    return request


def batch_results(response: pb.PublishBatchResponse) -> list[pb.PublishResponse | HeraldError]:
    """Each event's result: its response, or the error that kept it from being published."""
    results: list[pb.PublishResponse | HeraldError] = []
    for result in response.results:
        if result.HasField("published"):
            results.append(result.published)
            continue
        code = status_code(result.error.code)
        results.append(
            error_type(code)(
                code=code,
                message=result.error.message,
                field_violations=tuple(
                    FieldViolation(v.field, v.description) for v in result.error.field_violations
                ),
            )
        )
    return results


def update_endpoint_request(
    endpoint_id: str,
    tenant: str,
    *,
    url: str | Unset,
    description: str | Unset,
    event_types: Sequence[str] | Unset,
    channels: Sequence[str] | Unset,
    headers: Mapping[str, str] | Unset,
    retry_policy: pb.RetryPolicy | None | Unset,
    rate_limit: pb.RateLimit | None | Unset,
    circuit_breaker: pb.CircuitBreakerPolicy | None | Unset,
    max_in_flight: int | None | Unset,
    enabled: bool | Unset,
) -> pb.UpdateEndpointRequest:
    """The request changing the fields that are not UNSET (None: back to the server's
    default), each named in the update mask."""
    endpoint = pb.Endpoint(id=endpoint_id)
    mask: list[str] = []
    if not isinstance(url, Unset):
        endpoint.url = url
        mask.append("url")
    if not isinstance(description, Unset):
        endpoint.description = description
        mask.append("description")
    if not isinstance(event_types, Unset):
        endpoint.event_types.extend(event_types)
        mask.append("event_types")
    if not isinstance(channels, Unset):
        endpoint.channels.extend(channels)
        mask.append("channels")
    if not isinstance(headers, Unset):
        endpoint.headers.update(headers)
        mask.append("headers")
    if not isinstance(retry_policy, Unset):
        if retry_policy is not None:
            endpoint.retry_policy.CopyFrom(retry_policy)
        mask.append("retry_policy")
    if not isinstance(rate_limit, Unset):
        if rate_limit is not None:
            endpoint.rate_limit.CopyFrom(rate_limit)
        mask.append("rate_limit")
    if not isinstance(circuit_breaker, Unset):
        if circuit_breaker is not None:
            endpoint.circuit_breaker.CopyFrom(circuit_breaker)
        mask.append("circuit_breaker")
    if not isinstance(max_in_flight, Unset):
        if max_in_flight is not None:
            endpoint.max_in_flight = max_in_flight
        mask.append("max_in_flight")
    if not isinstance(enabled, Unset):
        endpoint.enabled = enabled
        mask.append("enabled")
    return pb.UpdateEndpointRequest(
        endpoint=endpoint, update_mask=field_mask_pb2.FieldMask(paths=mask), tenant_id=tenant
    )


def duration(value: timedelta | None) -> duration_pb2.Duration | None:
    if value is None:
        return None
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


def watch_request(
    after_cursor: int | None, template: pb.StreamDeliveryStatusRequest
) -> pb.StreamDeliveryStatusRequest:
    """The watch's request, starting after `after_cursor` (None: from now on)."""
    request = pb.StreamDeliveryStatusRequest()
    request.CopyFrom(template)
    if after_cursor is not None:
        request.after_cursor = after_cursor
    return request
