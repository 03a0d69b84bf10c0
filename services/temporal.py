"""One way to reach Temporal, shared by the worker, the API and the tools."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from config.settings import Settings
from services.codec import EncryptionCodec, parse_key


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic JSON, then encrypted with the council's payload key; failure messages and
    stack traces are encrypted too (they can quote the data that caused them)."""
    codec = EncryptionCodec(parse_key(settings.resolved_payload_key()),
                            [parse_key(k) for k in settings.payload_retired_keys])
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
