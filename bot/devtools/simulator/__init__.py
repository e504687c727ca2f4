"""MetaStudio simulator: a real HTTP server for tests, the demo and benchmarks.

Serve it on loopback::

    sim = Simulator()                       # the built-in demo set, relative to now
    async with serve_asgi(sim.app) as url:  # point the client (or the Huawei SDK) at url
        ...

Endpoints
---------
``GET /v2/{project_id}/ies/task/{id}``
    200 with the task detail, fields in the doc's order: ``resource, task_name, begin_time,
    end_time, task_type, operator, total_count, success_count, failure_count, task_status,
    task_id, user_id``. Counts grow linearly from ``begin_time`` over ``duration_seconds``
    (failures are ``floor(processed * failure_rate)``). Running: ``task_status`` 1 and
    ``end_time`` null. Done: ``task_status`` 2 and ``end_time = begin_time + duration`` (at
    least 1 ms later). A task whose begin lies in the future reads as running with no progress.
    Static tasks (the seed example) answer their fixed body. Each task uses one wire encoding,
    ``number`` (times and codes as JSON numbers) or ``string`` (``"1744276967708"``, ``"2"``);
    see :class:`SimTask`. Counts are always numbers, as the doc says.
    An unknown id that is not 32 hex characters: 400 ``MSS.000000003``; any other unknown id:
    404 ``MSS.000000001`` ("失败: task not found"). Ids are case-sensitive.
``GET /v2/{project_id}/ies/task``
    Query ``resource`` (repeated, as the SDK sends it; a comma is part of a name), ``business_id``, ``begin_time`` and
    ``end_time`` (epoch ms, inclusive bounds on ``begin_time``), ``offset`` (default 0) and
    ``limit`` (default 10, 1..100; anything else is 400 ``MSS.000000003``). Empty values count
    as absent. Answers ``{offset, limit, count, data}``, newest ``begin_time`` first (ties by
    id), ``count`` being all matches. Tasks with a fault are left out.
``POST /v3/auth/tokens``
    IAM password login scoped to the project id; 201 with the token in ``X-Subject-Token``.
    Wrong user, password or domain: 401 ``{"error": {"code": 401, "message": "The username or
    password is wrong.", "title": "Unauthorized"}}``; another project: 401; a malformed body:
    400. IAM error bodies follow IAM's shape, so ``request_id`` is only in the header there.
``GET /v3/projects?name=<region>``
    AK/SK-signed (no ``X-Project-Id``); ``{"projects": [{"id", "name", ...}], "links": ...}`` with
    the credentials' project when ``name`` is the simulator's region (default ``DEMO_REGION``),
    else an empty list. This is how the SDK, and taskbot, find a project id left unset.
Anything else: 404 ``APIGW.0101``.

Every response carries ``X-Request-Id`` (uuid4 hex); the ``error_code/error_msg/request_id``
error bodies repeat it.

Gateway checks on the task endpoints, in order: ``X-Auth-Token`` (when present) must be a
token this simulator issued and not expired by its clock (else 401 ``APIGW.0307`` "The token
must be updated."); otherwise ``Authorization: SDK-HMAC-SHA256 ...`` is verified against the
request as received (raw path, raw query, the headers in ``SignedHeaders``, the body). Host
must be signed, ``X-Sdk-Date`` must be within ``max_clock_skew_seconds`` of the clock, and a
temporary key needs a signed ``X-Security-Token`` (a permanent key must not send one). Any
failure is 401 ``APIGW.0301`` "Incorrect IAM authentication information: <reason>". Then
``X-Project-Id``, when sent, must equal the path's project id, and the path's project id must
be the one the credentials belong to; both failures are 403 ``APIGW.0302``. Faults apply
after that, to the show call only.

Faults (:class:`Fault`)
    ``slow``: waits ``seconds`` (asyncio.sleep) then answers normally. ``throttle``: 429,
    ``Retry-After: <seconds, %g>``, ``APIGW.0308``. ``server_error``: 500 ``MSS.000000002``.
    ``malformed``: 200 ``text/html`` that is not JSON. ``mss_error``: 400 with ``code`` and the
    Chinese doc's meaning as ``error_msg``; all four codes use 400, MSS.000000004 included,
    because the doc lists every business code under status 400. ``forbidden``: 403
    ``APIGW.0302``. ``times`` limits a fault to the first N authenticated requests for the id.

JSON task file (:meth:`Simulator.from_json_file`, and ``bot/data/demo_tasks.json``)
    A JSON list of objects. Keys (unknown keys are an error)::

        task_id            str, required (the demo uses 32 lowercase hex)
        task_name          str, required
        resource           str, required, e.g. "knowledge-intent-question-create"
        total_count        int, required
        duration_seconds   number, required: from begin to done
        begin_time_ms      int: absolute begin (epoch ms)          } exactly one
        started_seconds_ago number: begin relative to the Simulator's } of these two
                           creation (negative: starts later)
        failure_rate       0..1, default 0
        task_type          int or str, default 0 (0 import, 1 export in the demo set)
        operator, user_id  str
        business_id        str, matched by the list call's business_id filter
        encoding           "number" | "string"; absent: chosen from the task id's CRC-32
        fault              {"kind": ..., "seconds": ..., "code": ..., "times": ...}
        stall_at_seconds, stall_seconds  number: the counts freeze for a while (a stall)
        ends_early_at_seconds number: the task ends then, before its counts complete (as one
                           that fails halfway): end_time set, counts frozen

    Or a static task: ``{"static_body": {...the exact detail body...}}``, optionally with
    ``fault`` and ``business_id`` and nothing else.
"""

from bot.devtools.simulator.app import Simulator
from bot.devtools.simulator.auth import AccessKey, AuthRejected, Gateway, IssuedToken
from bot.devtools.simulator.demo import (
    BROKEN_TASK_ID,
    DEMO_ACCESS_KEY,
    DEMO_BUSINESS_IDS,
    DEMO_IAM_DOMAIN,
    DEMO_IAM_PASSWORD,
    DEMO_IAM_USER,
    DEMO_PROJECT_ID,
    DEMO_REGION,
    DEMO_SECRET_KEY,
    DEMO_SECURITY_TOKEN,
    DEMO_TEMP_ACCESS_KEY,
    DEMO_TEMP_SECRET_KEY,
    FINISHING_TASK_ID,
    FLAKY_TASK_ID,
    FORBIDDEN_TASK_ID,
    MALFORMED_TASK_ID,
    MSS_TASK_IDS,
    RUNNING_TASK_ID,
    SEED_TASK_ID,
    SLOW_TASK_ID,
    THROTTLED_TASK_ID,
)
from bot.devtools.simulator.tasks import (
    MSS_MESSAGES,
    SEED_TASK_BODY,
    STATUS_DONE,
    STATUS_RUNNING,
    Fault,
    FaultKind,
    SimTask,
    TaskFileError,
    bulk_tasks,
    demo_tasks,
    task_from_dict,
    tasks_from_json,
)

__all__ = [
    "BROKEN_TASK_ID",
    "DEMO_ACCESS_KEY",
    "DEMO_BUSINESS_IDS",
    "DEMO_IAM_DOMAIN",
    "DEMO_IAM_PASSWORD",
    "DEMO_IAM_USER",
    "DEMO_PROJECT_ID",
    "DEMO_REGION",
    "DEMO_SECRET_KEY",
    "DEMO_SECURITY_TOKEN",
    "DEMO_TEMP_ACCESS_KEY",
    "DEMO_TEMP_SECRET_KEY",
    "FINISHING_TASK_ID",
    "FLAKY_TASK_ID",
    "FORBIDDEN_TASK_ID",
    "MALFORMED_TASK_ID",
    "MSS_MESSAGES",
    "MSS_TASK_IDS",
    "RUNNING_TASK_ID",
    "SEED_TASK_BODY",
    "SEED_TASK_ID",
    "SLOW_TASK_ID",
    "STATUS_DONE",
    "STATUS_RUNNING",
    "THROTTLED_TASK_ID",
    "AccessKey",
    "AuthRejected",
    "Fault",
    "FaultKind",
    "Gateway",
    "IssuedToken",
    "SimTask",
    "Simulator",
    "TaskFileError",
    "bulk_tasks",
    "demo_tasks",
    "task_from_dict",
    "tasks_from_json",
]
