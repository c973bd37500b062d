"""Django for the alerts_web unit tests: settings loaded; no test here touches a service."""

from alerts_web.testing import configure_django_for_tests

configure_django_for_tests()
