from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.serializers import (
    LoginSerializer,
    PasswordChangeSerializer,
    ProfileUpdateSerializer,
    RegisterSerializer,
    TicketSerializer,
    TokenSerializer,
    UserSerializer,
    UserUpdatedSerializer,
)
from accounts.throttles import AuthAttemptThrottle, PasswordChangeThrottle, RegisterEmailThrottle
from chatserver.openapi import error_responses
from chatserver.throttles import UserRateThrottle


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthAttemptThrottle, RegisterEmailThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={201: OpenApiResponse(description="Created; empty body."), **error_responses(400, 429)},
        tags=["auth"],
        summary="Register a user",
    )
    def post(self, request: Request) -> Response:
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_register(**data.validated_data)
        return Response(status=status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthAttemptThrottle]

    @extend_schema(
        request=LoginSerializer,
        responses={200: TokenSerializer, **error_responses(400, 401, 429)},
        tags=["auth"],
        summary="Log in and get a JWT",
    )
    def post(self, request: Request) -> Response:
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_authenticate(**data.validated_data)
        return Response({"token": services.token_issue(user)})


class MeView(APIView):
    @extend_schema(responses={200: UserSerializer, **error_responses(401)}, tags=["users"], summary="My profile")
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


class MeUpdateView(APIView):
    @extend_schema(
        request=ProfileUpdateSerializer,
        responses={200: UserUpdatedSerializer, **error_responses(400, 401)},
        tags=["users"],
        summary="Update my username and/or email",
    )
    def put(self, request: Request) -> Response:
        data = ProfileUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_update_profile(request.user, **data.validated_data)
        return Response(UserUpdatedSerializer(user).data)

    @extend_schema(
        request=ProfileUpdateSerializer,
        responses={200: UserUpdatedSerializer, **error_responses(400, 401)},
        tags=["users"],
        summary="Update my username and/or email (same as PUT)",
    )
    def patch(self, request: Request) -> Response:
        return self.put(request)


class PasswordChangeView(APIView):
    throttle_classes = [UserRateThrottle, PasswordChangeThrottle]

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: TokenSerializer, **error_responses(400, 401, 429)},
        tags=["users"],
        summary="Change my password; every older token stops working",
        description="Returns a fresh token. Tokens issued before are refused from now on, "
        "and sockets opened with them are closed (code 4401).",
    )
    def post(self, request: Request) -> Response:
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.user_change_password(request.user, **data.validated_data)
        return Response({"token": token})


class WebSocketTicketView(APIView):
    @extend_schema(
        request=None,
        responses={200: TicketSerializer, **error_responses(401, 429)},
        tags=["auth"],
        summary="A single-use ticket to open a WebSocket without the JWT in the URL",
    )
    def post(self, request: Request) -> Response:
        ticket = services.ws_ticket_issue(request.user)
        return Response({"ticket": ticket, "expires_in": settings.WS_TICKET_TTL_SECONDS})
