"""Every selector the browser tests use, in one place (Streamlit test ids change between releases)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APP = "[data-testid='stApp']"
APP_CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
SIDEBAR_NAV = "stSidebarNav"
MAIN = "stMainBlockContainer"
UPLOAD_INPUT = "stFileUploaderDropzoneInput"
FILE_CHIP = "stFileChipName"
SUCCESS = "stAlertContentSuccess"
ERROR = "stAlertContentError"
EXCEPTION = "stException"
STALE = "[data-testid='stElementContainer'][data-stale='true']"  # the previous run's, until the rerun ends
METRIC = "stMetric"
PRIMARY_BUTTON = "stBaseButton-primary"
EXPANDER = "stExpander"
PROGRESS = "stProgress"
PLOTLY = "stPlotlyChart"
SELECTBOX = "stSelectbox"

PAGES = ["Home", "Noise impedance", "Denoising", "Super-resolution", "Inpainting", "JPEG artefacts", "Runs"]

# Several browsers on one server (test_shared_server.py)
SIDEBAR = "stSidebar"
TOAST = "stToast"
CODE = "stCode"
WARNING = "stAlertContentWarning"
INFO = "stAlertContentInfo"
CAPTION = "stCaptionContainer"
WEBSOCKET = "**/_stcore/stream"  # Streamlit's one websocket per tab (page.route_web_socket pattern)
OWNER_COOKIE = "dip_owner"  # ui.state.OWNER_COOKIE
FOREIGN_URL = "[href*='evil.example'], [src*='evil.example']"  # any link, image or frame to the test's evil host
SKELETON = "stSkeleton"  # an element whose code (a lazily loaded chunk) has not arrived yet
DRAWING = "canvas"  # streamlit-drawable-canvas: fabric.js stacks its canvases; the last one takes the pointer
