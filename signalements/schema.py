"""OpenAPI generation: drf-standardized-errors' AutoSchema (documented error responses),
plus anonymous access where our permission classes allow it."""

from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema


class AutoSchema(StandardizedErrorsAutoSchema):
    def get_auth(self):
        """drf-spectacular marks an operation as open to anonymous clients (`{}` in its
        security list) only for DRF's own AllowAny/IsAuthenticatedOrReadOnly; our
        permission classes say so through `allows_anonymous(request_method, view)`."""
        auth = super().get_auth()
        if {} not in auth and any(
            getattr(permission, "allows_anonymous", lambda method, view: False)(
                self.method, self.view
            )
            for permission in self.view.get_permissions()
        ):
            auth.append({})
        return auth
