"""dlt's REST API source reading one Caspio view: the extract step only, as `bench/compare.py` runs it.

Run with the dlt virtualenv's Python:
`bench/.venvs/dlt/bin/python bench/dlt_extract.py CONFIG.json PIPELINES_DIR RESULT.json`

CONFIG.json holds `client_id`, `client_secret`, `api_url`, `view`, `page_size` and `order_by`.
The source is configured as dlt's REST API source documentation describes for such an API:
OAuth 2 client credentials against the token endpoint, a `page_number` paginator on
`q.pageNumber` starting at 1 with no total in the answer (so it stops at the first empty page),
`q.pageSize` and `q.orderBy` as endpoint parameters, and the records under `Result`.

`pipeline.extract(source)` is the step measured; no destination is set, and nothing is normalized
or loaded. RESULT.json receives the rows the view's resource yielded and the wall and CPU
seconds of the extract call alone (the process as a whole is measured by the caller).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def source_config(config: dict[str, Any]) -> dict[str, Any]:
    """The `rest_api_source` configuration for the view."""
    return {
        "client": {
            "base_url": config["api_url"] + "/integrations/rest/v3/",
            "auth": {
                "type": "oauth2_client_credentials",
                "access_token_url": config["api_url"] + "/oauth/token",
                "client_id": config["client_id"],
                "client_secret": config["client_secret"],
            },
            "paginator": {
                "type": "page_number",
                "page_param": "q.pageNumber",
                "base_page": 1,
                "total_path": None,
            },
        },
        "resources": [
            {
                "name": config["view"],
                "endpoint": {
                    "path": f"views/{config['view']}/records",
                    "params": {
                        "q.pageSize": config["page_size"],
                        "q.orderBy": config["order_by"],
                    },
                    "data_selector": "Result",
                },
            }
        ],
    }


def rows_extracted(info: Any, resource: str) -> int:
    """Rows the resource yielded into one extract, from the extract's metrics."""
    total = 0
    for metrics in info.metrics.values():
        for step in metrics:
            written = step.get("resource_metrics", {}).get(resource)
            if written is not None:
                total += written.items_count
    return total


def main(argv: list[str]) -> int:
    """Extract the view and write the result file."""
    config_path, pipelines_dir, result_path = argv[1:4]
    with open(config_path, encoding="utf-8") as file:
        config = json.load(file)
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(source_config(config), name="caspio")
    pipeline = dlt.pipeline(pipeline_name="bench_caspio", pipelines_dir=pipelines_dir)
    wall, cpu = time.perf_counter(), time.process_time()
    info = pipeline.extract(source)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {
        "rows": rows_extracted(info, config["view"]),
        "extract_wall": wall,
        "extract_cpu": cpu,
        "dlt": dlt.__version__,
    }
    with open(result_path, "w", encoding="utf-8") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
