"""``manage.py push_worker``: sends push notifications.

One process runs the relay (due outbox rows become queued pushes, pushes
whose retry time has come go back in the queue) and starts the job queue's
workers (django-q2, jobs kept in the default database), which send them.
Run one per host (or several: on PostgreSQL they share the work); on SQLite,
one. SIGTERM stops it after the jobs in hand; a job of a worker killed
outright is taken up again after Q_CLUSTER["retry"] seconds.
"""

import logging
import signal
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone
from django_q.cluster import Cluster

from messaging.push.models import PushDelivery
from messaging.push.relay import relay_once

logger = logging.getLogger("messaging.push")

PRUNE_EVERY_SECONDS = 3600


class Command(BaseCommand):
    help = "Send push notifications (the relay and the job queue's workers)."

    def handle(self, *args, **options) -> None:
        _without_connection_pool()
        # The workers are forked first, before this process opens a database connection.
        cluster = Cluster()
        cluster.start()
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        logger.info("Push worker started (%s job workers)", settings.Q_CLUSTER["workers"])
        pruned_at = 0.0
        try:
            while not stopping.is_set() and cluster.sentinel.is_alive():
                try:
                    relay_once()
                    if time.monotonic() - pruned_at > PRUNE_EVERY_SECONDS:
                        pruned_at = time.monotonic()
                        prune_finished()
                except DatabaseError:
                    logger.exception("Push relay pass failed; retrying")
                finally:
                    close_old_connections()  # back to the pool; a broken one is replaced
                stopping.wait(settings.PUSH_POLL_SECONDS)
        finally:
            _stop(cluster)
            logger.info("Push worker stopped")


def _stop(cluster: Cluster, timeout: float = 60) -> None:
    """Ask the cluster to finish the jobs in hand, and wait for it a bounded
    time. A SIGTERM sent to the whole process group (systemd, most
    supervisors) has already ended its processes, which take SIGTERM's
    default; setting the stop event then blocks forever on the dead
    sentinel's side of it, as would Cluster.stop(): it is set from a thread
    of its own, and given up on. Jobs cut short are run again (at least once)."""
    sentinel = cluster.sentinel
    if sentinel is None or not sentinel.is_alive():
        return
    setter = threading.Thread(target=cluster.stop_event.set, daemon=True)
    setter.start()
    setter.join(5)
    sentinel.join(timeout if not setter.is_alive() else 1)
    if sentinel.is_alive():
        logger.warning("Push job workers did not stop within %s s; killing them", timeout)
        sentinel.kill()
        sentinel.join()


def _without_connection_pool() -> None:
    """The job workers are forked processes: a psycopg pool made before a fork
    would hand the same connections to several of them. Each process keeps a
    plain connection of its own instead (a push or a relay pass every so often
    needs no pool)."""
    database = connections["default"].settings_dict
    if database["OPTIONS"].pop("pool", None) is not None:
        database["CONN_MAX_AGE"] = 60


def prune_finished() -> int:
    """Finished pushes older than the event log's retention (the newest of each
    conversation is where its next push starts; older ones only take room)."""
    before = timezone.now() - timedelta(days=settings.EVENT_LOG_RETENTION_DAYS)
    return PushDelivery.objects.filter(created_at__lt=before).exclude(status=PushDelivery.Status.PENDING).delete()[0]
