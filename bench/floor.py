"""The floor: the least a Python client must do to turn a Caspio view into Singer RECORD lines.

Run: `python bench/floor.py CONFIG.json > records.jsonl`

CONFIG.json holds `client_id`, `client_secret`, `api_url` and `view` (as tap-huey's config does,
with one view). It takes one token by client credentials with `requests`, then pages through the
view with `q.pageSize=1000`, `q.pageNumber=N` and `q.orderBy=<key>` until a page comes back short,
json-decodes each page and writes each row to stdout as one line
`{"type":"RECORD","stream":<view>,"record":<row>}`. Nothing else: no schema, no state, no
retries, no type conversion. It prints the number of rows written to stderr.
"""

from __future__ import annotations

import json
import sys

import requests

PAGE_SIZE = 1000


def main(argv: list[str]) -> int:
    """Read the whole view and write it as RECORD lines."""
    with open(argv[1], encoding="utf-8") as file:
        config = json.load(file)
    view = config["view"]
    order_by = config.get("order_by", "ProviderID")
    session = requests.Session()
    answer = session.post(
        config["api_url"] + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
        },
        timeout=60,
    )
    answer.raise_for_status()
    session.headers["Authorization"] = "Bearer " + answer.json()["access_token"]
    url = f"{config['api_url']}/integrations/rest/v3/views/{view}/records"
    out = sys.stdout
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    rows = 0
    number = 1
    while True:
        page = session.get(
            url,
            params={"q.pageSize": PAGE_SIZE, "q.pageNumber": number, "q.orderBy": order_by},
            timeout=120,
        )
        page.raise_for_status()
        result = page.json()["Result"]
        for row in result:
            out.write(dumps({"type": "RECORD", "stream": view, "record": row}))
            out.write("\n")
        rows += len(result)
        if len(result) < PAGE_SIZE:
            break
        number += 1
    out.flush()
    print(f"rows={rows}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
