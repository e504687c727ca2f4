"""Every id Slack sends back to taskbot, in one place, so a builder and its listener cannot disagree.

Slack echoes these ids: a button's ``action_id`` and ``block_id`` and a view's ``callback_id``
in interaction payloads, a modal's inputs keyed by block and action id in ``view.state.values``,
a workflow step's ``callback_id`` in ``function_executed``, the slash command's name, and the
``event_type`` of message metadata in ``conversations.history``. The Block Kit builders
(``cards``, ``alerts``, ``digests``, ``home``, ``modals``) and the ``Poster`` put them into what
taskbot sends; ``handlers`` registers its Bolt listeners on them.

The rules, pinned by ``tests/slack/test_ids.py`` and ``tests/test_manifest.py``:

- Action ids are unique across the app. Bolt matches an ``app.action`` listener on the action id
  alone, whatever message or view holds the element, so two elements sharing one id would run
  one listener. The one value used twice is deliberate: ``BLOCK_TEST`` and
  ``ACTION_TEST_CONNECTION`` name the Test connection actions block and its one button, and
  block ids and action ids are separate namespaces in Slack.
- Every id a listener is registered on is declared here (``ACTIONS``, ``VIEWS``, ``FUNCTIONS``,
  ``COMMANDS``), and ``manifest.yaml`` declares the same function callback ids and command.
  Event types (``app_home_opened``...) are Slack's names, not ours, and are not here.
- Values never change: messages already posted keep their buttons for as long as they live,
  stored message metadata carries ``DELIVERY_EVENT``, and each operator pastes the manifest
  into Slack once.

May import only the standard library.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "ACTIONS",
    "ACTION_CHANNEL_LANGUAGE",
    "ACTION_CONFIGURE",
    "ACTION_GUARDRAILS",
    "ACTION_OPEN",
    "ACTION_REFRESH",
    "ACTION_TEST_CONNECTION",
    "ACTION_UNSUBSCRIBE",
    "ACTION_UNWATCH",
    "ACTION_WATCH",
    "BLOCK_TEST",
    "BLOCK_TEST_RESULT",
    "COMMANDS",
    "COMMAND_TASK",
    "CONNECTION_MODAL",
    "DELIVERY_EVENT",
    "FUNCTIONS",
    "GET_TASK",
    "GUARDRAILS_MODAL",
    "LANGUAGE_FOLLOW",
    "VIEWS",
    "WAIT_FOR_TASK",
    "ConnectionInput",
    "GuardrailsInput",
    "ModalInput",
]

# --- Task cards (``cards``), alerts (``alerts``) and digests (``digests``) ------------------------
# Each button's value is the task id.

ACTION_REFRESH: Final = "task_refresh"
"""Refresh on a task card: redraws the card in place."""
ACTION_OPEN: Final = "task_open"
"""Open on a recent-tasks line, an alert or a digest: posts that task's card."""
ACTION_WATCH: Final = "task_watch"
"""Watch on a running task's card: follows the task until it finishes."""

# --- The "watching" list (``alerts``) ------------------------------------------------------------

ACTION_UNWATCH: Final = "task_unwatch"
"""Stop on one watched task; its value is the task id."""
ACTION_UNSUBSCRIBE: Final = "feed_unsubscribe"
"""Stop on the channel's project feed; its value is the channel id."""

# --- App Home (``home``) -------------------------------------------------------------------------

ACTION_CONFIGURE: Final = "home_configure_connection"
"""Configure under the connection: opens ``CONNECTION_MODAL``."""
ACTION_GUARDRAILS: Final = "home_configure_guardrails"
"""Configure under the guardrails: opens ``GUARDRAILS_MODAL``."""
ACTION_CHANNEL_LANGUAGE: Final = "home_channel_language"
"""The channel-language menu, saved on change; its option values are catalog ids or ``LANGUAGE_FOLLOW``."""
LANGUAGE_FOLLOW: Final = "follow"
"""The channel-language option for "follow the person who asked"."""

# --- The admin modals (``modals``) ---------------------------------------------------------------

CONNECTION_MODAL: Final = "connection_modal"
"""Callback id of the MetaStudio connection modal; its submission is validated in the ack."""
GUARDRAILS_MODAL: Final = "guardrails_modal"
"""Callback id of the ``/task`` guardrails modal."""
ACTION_TEST_CONNECTION: Final = "connection_test"
"""Test connection in the connection modal: checks the values typed so far."""
BLOCK_TEST: Final = "connection_test"
"""The actions block holding Test connection (the same value as its button, see above)."""
BLOCK_TEST_RESULT: Final = "test_result"
"""The context block that shows the last test's result."""


class ModalInput(StrEnum):
    """An input block of an admin modal. Its value is the block id, which keys the "errors"
    response and is the catalog key of the input's label; the action id is what follows the
    modal's prefix, so the two cannot be paired wrongly. Slack keeps what the admin typed
    across a ``views.update`` only while both ids stay the same."""

    @property
    def action_id(self) -> str:
        return self.value.partition("_")[2]


class ConnectionInput(ModalInput):
    REGION = "connection_region"
    ENDPOINT = "connection_endpoint"
    PROJECT_ID = "connection_project_id"
    KIND = "connection_kind"
    ACCESS_KEY = "connection_access_key"
    SECRET_KEY = "connection_secret_key"
    SECURITY_TOKEN = "connection_security_token"
    IAM_USERNAME = "connection_iam_username"
    IAM_PASSWORD = "connection_iam_password"
    IAM_DOMAIN = "connection_iam_domain"


class GuardrailsInput(ModalInput):
    CHANNELS = "guardrails_channels"
    USERGROUP = "guardrails_usergroup"


# --- Workflow Builder steps (``steps``), the slash command, message metadata (``poster``) -----------

GET_TASK: Final = "get_task"
"""The step that reads one task as it is now (``functions.get_task`` in the manifest)."""
WAIT_FOR_TASK: Final = "wait_for_task"
"""The step that continues the workflow once a task finishes (``functions.wait_for_task``)."""
COMMAND_TASK: Final = "/task"
"""The slash command (``features.slash_commands`` in the manifest)."""
DELIVERY_EVENT: Final = "taskbot_delivery"
"""``event_type`` of the metadata on every alert, by which a restarted process finds one already posted."""

# --- What handlers register listeners on --------------------------------------------------------

ACTIONS: Final = (
    ACTION_REFRESH,
    ACTION_OPEN,
    ACTION_WATCH,
    ACTION_UNWATCH,
    ACTION_UNSUBSCRIBE,
    ACTION_CONFIGURE,
    ACTION_GUARDRAILS,
    ACTION_CHANNEL_LANGUAGE,
    ACTION_TEST_CONNECTION,
)
VIEWS: Final = (CONNECTION_MODAL, GUARDRAILS_MODAL)
FUNCTIONS: Final = (GET_TASK, WAIT_FOR_TASK)
COMMANDS: Final = (COMMAND_TASK,)
