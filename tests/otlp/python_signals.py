"""Sends metrics and spans to drainpipe through the OpenTelemetry Python SDK's OTLP exporters,
over HTTP (opentelemetry-exporter-otlp-proto-http) or gRPC (-proto-grpc), then checks that every
export succeeded. Usage: python_signals.py http|grpc URL TOKEN RUN_ID

Metrics: a gauge (dyno memory), a monotonic counter, an up-down counter and a histogram, each
with data point attributes; collected twice, so each series has two points. Spans: a server span
with a child client span that has an event, a link and an error status."""

import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.metrics import Observation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

transport, url, token, run = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if transport == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    target = {"endpoint": url, "insecure": True, "headers": (("authorization", f"Bearer {token}"),)}
    metric_target, span_target = target, target
else:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    headers = {"Authorization": f"Bearer {token}"}
    metric_target = {"endpoint": f"{url}/v1/metrics", "headers": headers}
    span_target = {"endpoint": f"{url}/v1/traces", "headers": headers}

resource = Resource.create(
    {
        "service.name": "shop",
        "heroku.app.name": "shop",
        "heroku.app.id": "6a8d8e3c-1f0b-4b2a-9c1d-0e9f8a7b6c5d",
        "heroku.dyno.name": "web.1",
        "heroku.dyno.type": "web",
        "heroku.release.version": "v42",
        "run": run,
    }
)
results = []


class Metrics(OTLPMetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        results.append(("metrics", result == MetricExportResult.SUCCESS))
        return result


class Spans(OTLPSpanExporter):
    def export(self, spans):
        result = super().export(spans)
        results.append(("spans", result == SpanExportResult.SUCCESS))
        return result


reader = PeriodicExportingMetricReader(Metrics(timeout=10, **metric_target), export_interval_millis=3_600_000)
meters = MeterProvider(resource=resource, metric_readers=[reader])
meter = meters.get_meter("shop.metrics", "1.2.3")
memory = [512.5]
meter.create_observable_gauge(
    "process.memory.usage",
    callbacks=[lambda _options: [Observation(memory[0] * 1024 * 1024, {"memory.type": "rss"})]],
    unit="By",
    description="dyno memory",
)
orders = meter.create_counter("shop.orders", unit="{order}")
in_flight = meter.create_up_down_counter("shop.requests.in_flight")
latency = meter.create_histogram("shop.request.duration", unit="ms")
orders.add(3, {"payment.method": "card"})
in_flight.add(5)
in_flight.add(-2)
for ms in (4, 12, 250):
    latency.record(ms, {"http.route": "/checkout"})
meters.force_flush()
memory[0] = 640.25
orders.add(2, {"payment.method": "card"})
meters.force_flush()
meters.shutdown()

tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(Spans(timeout=10, **span_target)))
tracer = tracer_provider.get_tracer("shop.tracing", "1.2.3")
with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER, attributes={"http.route": "/checkout", "run": run}) as root:
    other = root.get_span_context()
    with tracer.start_as_current_span(
        "charge card", kind=SpanKind.CLIENT, links=[Link(other, {"link.why": "retry of"})]
    ) as child:
        child.add_event("card declined", {"decline.code": "51"})
        child.set_status(Status(StatusCode.ERROR, "declined"))
tracer_provider.shutdown()

if len([r for r in results if r[0] == "metrics"]) < 2 or len([r for r in results if r[0] == "spans"]) != 2 or not all(ok for _, ok in results):
    sys.exit(f"exports did not all succeed: {results}")
print(f"sent metrics and 2 spans for run {run} over {transport}")
