"""Client throughput: taskbot's async MetaStudio client against the official SDK's ``ShowTask``.

Both talk to the same simulator, which runs in its own process. Sequential requests compare
like with like (the SDK is synchronous); a concurrent run shows what the async client does
with one shared keep-alive connection pool. Run: ``python -m bench.bench_client [--requests 500]``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmetastudio.v1 import MetaStudioClient as SdkClient
from huaweicloudsdkmetastudio.v1 import ShowTaskRequest
from pydantic import SecretStr

from bench.common import run_benchmark, services_process
from bot.devtools import simulator as sim
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.credentials import AkSk


def sdk_run(url: str, count: int) -> float:
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    client = (
        SdkClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(sim.DEMO_ACCESS_KEY, sim.DEMO_SECRET_KEY, sim.DEMO_PROJECT_ID))
        .with_endpoints([url])
        .build()
    )
    client.show_task(ShowTaskRequest(id=sim.SEED_TASK_ID))  # warm-up: connection, signer
    started = time.perf_counter()
    for _ in range(count):
        client.show_task(ShowTaskRequest(id=sim.SEED_TASK_ID))
    return count / (time.perf_counter() - started)


async def ours_run(url: str, count: int, concurrency: int) -> float:
    credentials = AkSk(
        project_id=sim.DEMO_PROJECT_ID,
        access_key=sim.DEMO_ACCESS_KEY,
        secret_key=SecretStr(sim.DEMO_SECRET_KEY),
    )
    async with MetaStudioClient(endpoint=url, credentials=credentials) as client:
        await client.get_task(sim.SEED_TASK_ID)
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                await client.get_task(sim.SEED_TASK_ID)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


async def main(requests: int) -> None:
    logging.getLogger("taskbot").setLevel(logging.WARNING)
    async with services_process() as urls:
        url = urls["simulator"]
        sdk = await asyncio.to_thread(sdk_run, url, requests)
        ours_sequential = await ours_run(url, requests, 1)
        ours_concurrent = await ours_run(url, requests * 4, 32)
    print(f"ShowTask against the simulator (separate process), {requests} requests each")
    print(f"  official SDK (sync, sequential):   {sdk:8.0f} req/s")
    print(
        f"  taskbot client (async, sequential): {ours_sequential:8.0f} req/s  ratio {ours_sequential / sdk:.2f}x"
    )
    print(
        f"  taskbot client (async, 32 at once): {ours_concurrent:8.0f} req/s  ratio {ours_concurrent / sdk:.2f}x"
    )


if __name__ == "__main__":
    run_benchmark(main, requests=500)
