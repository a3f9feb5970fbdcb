"""Decode OTLP/HTTP protobuf export bodies with OpenTelemetry's own generated classes
(opentelemetry-proto): python3 tracing_otlp_decode.py BODY... -> JSON list of spans."""
import json
import sys

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


spans = []
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        request = ExportTraceServiceRequest.FromString(f.read())
    for resource_spans in request.resource_spans:
        resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append({
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": Span.SpanKind.Name(span.kind),
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": {a.key: value(a.value) for a in span.attributes},
                    "status": span.status.code,
                    "scope": scope_spans.scope.name,
                    "service": resource.get("service.name"),
                })
json.dump(spans, sys.stdout)
