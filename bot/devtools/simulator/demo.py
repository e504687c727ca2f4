"""Fixed identities of the demo set: project, credentials and task ids (``bot/data/demo_tasks.json``)."""

from __future__ import annotations

DEMO_PROJECT_ID = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
DEMO_ACCESS_KEY = "SIMDEMOACCESSKEY0001"
DEMO_SECRET_KEY = "sim-demo-secret-key-000000000000000000000"
# Temporary AK/SK: requests must carry, and sign, X-Security-Token.
DEMO_TEMP_ACCESS_KEY = "SIMTEMPACCESSKEY0001"
DEMO_TEMP_SECRET_KEY = "sim-temp-secret-key-00000000000000000000"
DEMO_SECURITY_TOKEN = "sim-security-token-0000000000000000"
DEMO_IAM_USER, DEMO_IAM_PASSWORD, DEMO_IAM_DOMAIN = "demo-user", "demo-password", "demo-domain"
DEMO_IAM_USER_ID = "5f3a9c1e7b2d4f6a8c0e2b4d6f8a0c2e"
DEMO_IAM_DOMAIN_ID = "1d3f5a7c9e0b4d2f6a8c0e2b4d6f8a0c"
DEMO_REGION = "cn-north-4"

# Exactly the seed doc's example body; finished, status 0, begin == end.
SEED_TASK_ID = "fd1c56acbb2c4b1aa24ba37df99f3129"
# 50,000 Q&A pairs over 3 hours, half done when the Simulator is created, a few failures.
RUNNING_TASK_ID = "7b3e9f1c2d4a4e8b9c0d1e2f3a4b5c6d"
# 1,200 items over 60 s, started 40 s before the Simulator was created: finishes ~20 s after it.
FINISHING_TASK_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"
SLOW_TASK_ID = "51000000000000000000000000000001"  # answers after 2 s
THROTTLED_TASK_ID = "42900000000000000000000000000001"  # 429, Retry-After: 1, for the first 2 requests
FLAKY_TASK_ID = "50000000000000000000000000000002"  # 500 once, then OK
BROKEN_TASK_ID = "50000000000000000000000000000001"  # 500 always
MALFORMED_TASK_ID = "ba000000000000000000000000000001"  # 200 with an HTML body
# 400 with that business error_code (all four, MSS.000000004 included, as the doc lists them under 400).
MSS_TASK_IDS: dict[str, str] = {
    "MSS.000000001": "e0000000000000000000000000000001",
    "MSS.000000002": "e0000000000000000000000000000002",
    "MSS.000000003": "e0000000000000000000000000000003",
    "MSS.000000004": "e0000000000000000000000000000004",
}
FORBIDDEN_TASK_ID = "40300000000000000000000000000001"  # 403 APIGW.0302

# Other ordinary tasks of the demo set (listed by ``GET /v2/{project_id}/ies/task``).
DEMO_BUSINESS_IDS = ("a1b2c3d4e5f60718293a4b5c6d7e8f90", "f0e1d2c3b4a5968778695a4b3c2d1e0f")
