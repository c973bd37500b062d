"""The raw-FastAPI baseline of `readmit bench stream`: read the body, answer, do nothing."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from fhir_mappings import FHIR_JSON

app = FastAPI()


@app.post("/fhir")
async def swallow(request: Request) -> Response:
    await request.body()
    return Response(b"{}", media_type=FHIR_JSON)
