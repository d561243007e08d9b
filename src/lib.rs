//! acronis-reports: declarative, verified billing reports from the Acronis Cyber Protect Cloud API.
