"""Screenshots of the real app for the README tour: `python scripts/screenshots.py [BASE_URL]`.

Needs a running `make run` whose demo pipeline has finished (admin/admin, rater/rater). Writes
docs/screenshots/*.png at 1280x800.
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def login(page, username: str, password: str) -> None:
    page.goto(f"{BASE}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{BASE}/")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        admin = browser.new_page(viewport={"width": 1280, "height": 800})
        login(admin, "admin", "admin")
        admin.screenshot(path=OUT / "dashboard.png")
        admin.goto(f"{BASE}/imagesets/")
        admin.get_by_role("link", name="Cardiac MRI phantom 64").click()
        admin.locator("#image-grid").scroll_into_view_if_needed()
        admin.screenshot(path=OUT / "imageset.png")
        admin.goto(f"{BASE}/synthesis/")
        admin.locator("table a").first.click()
        admin.wait_for_timeout(1500)
        admin.screenshot(path=OUT / "run.png")
        admin.goto(f"{BASE}/evaluation/")
        admin.screenshot(path=OUT / "evaluation.png", full_page=True)
        admin.goto(f"{BASE}/turing/")
        admin.locator("table a").first.click()
        admin.screenshot(path=OUT / "study.png")
        rater = browser.new_page(viewport={"width": 1280, "height": 800})
        login(rater, "rater", "rater")
        rater.goto(f"{BASE}/turing/mine/")
        rater.locator("a.button").first.click()
        rater.locator("#start-button").click()
        rater.wait_for_timeout(1500)
        rater.keyboard.press("f")
        rater.keyboard.press("4")
        rater.screenshot(path=OUT / "viewer.png")
        browser.close()
    for png in sorted(OUT.glob("*.png")):
        print(png, png.stat().st_size)


if __name__ == "__main__":
    main()
