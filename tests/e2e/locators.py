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

PAGES = ["Home", "Noise impedance", "Denoising", "Super-resolution", "Inpainting", "Runs"]
