from accounts.models import is_rater


def roles(request) -> dict:
    """Navigation flags: admins see every section, raters only their studies."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_admin": False, "is_rater": False}
    return {"is_admin": user.is_staff, "is_rater": is_rater(user)}
