"""The framework ceiling: a plain FastAPI app answering 202 to the registration POST, no work.

Served by uvicorn exactly as ``clarion serve`` serves Clarion (uvloop, httptools, one worker,
no access log), on the same path and with the same body, so the gap between this and Clarion is
what Clarion's own work costs. The body is read (a real endpoint must read it) but not parsed.

Run: ``uvicorn clarion_bench.hello_app:app --loop uvloop --http httptools --workers 1``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/api/v1.0/orgs/{org_id}/pushdeviceregistration/devices", status_code=202)
async def register_device(org_id: str, request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


@app.post("/api/v1.0/orgs/{org_id}/pushdeviceregistration/devices/batch", status_code=202)
async def register_devices(org_id: str, request: Request) -> Response:
    await request.body()
    return Response(status_code=202)
