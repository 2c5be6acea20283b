"""``manage.py push_worker``: sends push notifications.

One process runs the relay (due outbox rows become pushes, pushes due are
handed to the job queue) and starts the job queue's workers (django-q2, jobs
kept in the default database), which send them. Run one per host (or
several: on PostgreSQL they share the work); on SQLite, one. A SIGTERM to
this process lets the jobs in hand finish (at most 40 s); one to the whole
process group ends them at once. Either way, and after SIGKILL, a push whose
job did not finish is handed out again once its lease runs out.
"""

import logging
import signal
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_q.cluster import Cluster
from django_q.models import Task

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


def _stop(cluster: Cluster, timeout: float = 40) -> None:
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
    """Finished pushes older than the event log's retention, but for the last
    one sent of each user and conversation (where their next push starts),
    and the job queue's records of failed jobs as old."""
    before = timezone.now() - timedelta(days=settings.EVENT_LOG_RETENTION_DAYS)
    newer_sent = PushDelivery.objects.filter(
        user=OuterRef("user"),
        conversation=OuterRef("conversation"),
        status=PushDelivery.Status.SENT,
        top_seq__gt=OuterRef("top_seq"),
    )
    old = PushDelivery.objects.filter(created_at__lt=before).exclude(status=PushDelivery.Status.PENDING)
    deleted = old.filter(~Q(status=PushDelivery.Status.SENT) | Exists(newer_sent)).delete()[0]
    Task.objects.filter(stopped__lt=before).delete()
    return deleted
