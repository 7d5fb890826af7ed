from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


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
