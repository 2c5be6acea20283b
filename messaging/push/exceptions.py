"""Push errors, with stable codes like every other refusal."""

from http import HTTPStatus

from chatserver.errors import InvalidInput, NotFound


class InvalidTarget(InvalidInput):
    code = "invalid_push_target"


class TooManyTargets(InvalidInput):
    code = "too_many_push_targets"
    status = HTTPStatus.CONFLICT


class TargetNotFound(NotFound):
    code = "push_target_not_found"
    default_detail = "No such push target."
