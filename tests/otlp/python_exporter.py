"""Sends three log records to drainpipe through the OpenTelemetry Python SDK's OTLP/HTTP
exporter, then checks the export succeeded. Usage: python_exporter.py URL TOKEN RUN_ID"""

import logging
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

url, token, run = sys.argv[1], sys.argv[2], sys.argv[3]
resource = Resource.create(
    {
        "service.name": "shop",
        "heroku.app.name": "shop",
        "heroku.app.id": "6a8d8e3c-1f0b-4b2a-9c1d-0e9f8a7b6c5d",
        "heroku.dyno.name": "web.1",
        "heroku.dyno.type": "web",
        "heroku.release.version": "v42",
    }
)
results = []


class Recording(OTLPLogExporter):
    """The SDK logs a failed export and goes on: record each result to check them at the end."""

    def export(self, batch):
        result = super().export(batch)
        results.append(result)
        return result


exporter = Recording(endpoint=f"{url}/v1/logs", headers={"Authorization": f"Bearer {token}"}, timeout=10)
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
log = logging.getLogger("shop.checkout")
log.setLevel(logging.DEBUG)
log.addHandler(handler)

tracer = TracerProvider(resource=resource).get_tracer("shop")
log.info("cart viewed %s", run, extra={"cart.items": 3})
with tracer.start_as_current_span("checkout"):
    log.warning("payment retried %s", run, extra={"order.id": "A-4412"})
log.error("payment failed %s", run)
provider.force_flush()
provider.shutdown()
# LogExportResult, LogRecordExportResult in newer SDKs: compared by name.
if len(results) != 3 or any(r.name != "SUCCESS" for r in results):
    sys.exit(f"exports did not all succeed: {results}")
print(f"sent 3 records for run {run}")
