"""The ward worklist as nurses use it: pages, JSON and live sockets over alerts and wards.

Above both :mod:`alerts_web.alerts` (the rows) and :mod:`alerts_web.wards` (who may see
which ward), so neither of those imports the other's presentation. Not a Django app of
its own: it has no models; its URL namespace stays ``wards`` (the addresses nurses
bookmarked).
"""
