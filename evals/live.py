"""Direct publishes for multi-host deployments: writers tell every server over Redis.

The signal file only reaches server processes on the writer's host. With `REDIS_URL`
set, the write path also calls `publish_update(eval_id)` after commit; every server's
watcher (`evals.watcher`) is a member of `SIGNALS_GROUP` and debounces these exactly
like file changes. Without Redis the in-memory layer reaches no other process, so
publishing would be pointless: it is a no-op.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from evals.watcher import SIGNALS_GROUP

logger = logging.getLogger(__name__)


def publish_update(eval_id: str) -> None:
    """Tell every server process that `eval_id` changed (best effort, after commit).

    Never raises: the write it reports has already committed, and the signal file still
    covers this host if Redis is away.
    """
    if not settings.REDIS_URL:
        return
    try:
        async_to_sync(get_channel_layer().group_send)(
            SIGNALS_GROUP, {"type": "eval.signal", "eval_id": eval_id}
        )
    except Exception:
        logger.warning("Could not publish the update of %s to Redis", eval_id, exc_info=True)
