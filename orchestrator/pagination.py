from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

if TYPE_CHECKING:  # rest_framework.generics imports this module (DEFAULT_PAGINATION_CLASS)
    from rest_framework.generics import GenericAPIView


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request: Request, paginator: Paginator) -> int | str:
        """Like Django's ``Paginator.get_page``: a page past the end is the last page, a page that is not a
        positive number the first, so a list never answers an (undocumented) 404 "Invalid page"."""
        number = super().get_page_number(request, paginator)
        if number in self.last_page_strings:
            return number
        try:
            number = int(number)
        except (TypeError, ValueError):
            return 1
        return min(max(number, 1), paginator.num_pages)


def filtered_page(
    view: "GenericAPIView",
    request: Request,
    *,
    filters: type[serializers.Serializer],
    select: Callable[..., QuerySet],
    serializer: type[serializers.Serializer],
) -> Response:
    """A list endpoint's answer: validate the query's filters (400 naming them), select, paginate, serialise."""
    parsed = filters(data=request.query_params)
    parsed.is_valid(raise_exception=True)
    page: Any = view.paginate_queryset(select(filters=parsed.validated_data))
    return view.get_paginated_response(serializer(page, many=True).data)
