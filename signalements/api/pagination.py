"""Page-number pagination whose parameters are validated: `page=abc` or `page_size=0`
is a 400 naming the parameter (DRF's default silently ignores a bad page size)."""

from rest_framework import pagination, serializers


class PaginationParameters(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        parameters = PaginationParameters(
            data={
                name: request.query_params[name]
                for name in (self.page_query_param, self.page_size_query_param)
                if name in request.query_params
            }
        )
        parameters.is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        """DRF's parameters, with the bounds enforced above (the schema tells the truth:
        `page=0` is refused)."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] in (self.page_query_param, self.page_size_query_param):
                parameter["schema"]["minimum"] = 1
        return parameters

    def get_page_size(self, request):
        requested = request.query_params.get(self.page_size_query_param)
        if requested is None:
            return self.page_size
        return min(int(requested), self.max_page_size)
