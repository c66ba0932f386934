"""The reference pipeline logctl is measured against (issue: asyncpg pool of 2
connections + orjson, binary COPY in 10k-row batches). Reads logctl's generic shape,
writes the same typed columns and metadata, random (v4) keys.

usage: python3 asyncpg_load.py DSN FILE
"""

import asyncio
import datetime
import sys
import uuid

import asyncpg
import orjson

BATCH = 10_000
COLUMNS = ["event_id", "service_id", "created_at", "level", "message", "endpoint",
           "method", "status", "latency_ms", "request_id", "metadata"]
REQUEST = ("latency_ms", "endpoint", "method", "status", "request_id")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def service_id(pool, cache, name):
    found = cache.get(name)
    if found is None:
        found = await pool.fetchval(
            "INSERT INTO services (service_name) VALUES ($1) ON CONFLICT (service_name) "
            "DO UPDATE SET service_name = EXCLUDED.service_name RETURNING service_id", name)
        cache[name] = found
    return found


def row(service_ids, line):
    event = orjson.loads(line)
    metadata = dict(event.pop("metadata", None) or {})
    ts = event.pop("ts", None) or event.pop("timestamp", None) or event.pop("time", None)
    service = event.pop("service")
    level = event.pop("level", None)
    message = event.pop("msg", None) or event.pop("message", None)
    for key in REQUEST:
        if key in event:
            metadata[key] = event.pop(key)
    metadata.update(event)
    request_id = metadata.get("request_id")
    return (uuid.uuid4(), service_ids[service], parse_time(ts), level, message,
            metadata.get("endpoint"), metadata.get("method"), metadata.get("status"),
            metadata.get("latency_ms"), uuid.UUID(request_id) if request_id else None,
            orjson.dumps(metadata).decode())


async def copy(pool, rows):
    async with pool.acquire() as connection:
        await connection.copy_records_to_table("log_events", records=rows, columns=COLUMNS)


async def main(dsn, path):
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=2)
    cache = {}
    pending = set()
    batch = []
    with open(path, "rb") as lines:
        for line in lines:
            try:
                batch.append(row(cache, line))
            except KeyError as missing:  # a service not seen yet
                await service_id(pool, cache, missing.args[0])
                batch.append(row(cache, line))
            if len(batch) == BATCH:
                pending.add(asyncio.ensure_future(copy(pool, batch)))
                batch = []
                if len(pending) >= 2:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if batch:
        pending.add(asyncio.ensure_future(copy(pool, batch)))
    if pending:
        await asyncio.gather(*pending)
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
