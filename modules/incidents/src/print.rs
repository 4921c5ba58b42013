//! The printable sheet of an incident (DOMAIN.md "Print: any user"): an A4 PDF with its fields,
//! people, resolution lines, timeline and attachments' names, labels in the reader's language
//! and times in their zone.
//!
//! The text is set in DejaVu Sans (assets/fonts, embedded in the binary), so accents and
//! non-Latin scripts print as typed; the standard PDF fonts only cover Windows-1252. Each file
//! embeds only the glyphs it uses: printpdf subsets fonts only with its `text_layout` feature
//! (a whole layout engine), so the sheet is laid out with placeholder font ids, then the glyphs
//! its text uses are cut out of the font with allsorts and the result is what gets embedded.
//! Lines are wrapped on measured glyph widths and pages break as needed.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use printpdf::{
    Color, FontId, Line, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle,
    PdfPage, PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};
use vigie_console::Lang;
use vigie_core::domain::Domains;

use crate::error::IncidentsError;
use crate::model::IncidentFull;

const REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// Parsed once: the fonts are large.
fn fonts() -> Result<&'static (ParsedFont, ParsedFont), IncidentsError> {
    static FONTS: OnceLock<Option<(ParsedFont, ParsedFont)>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let regular = ParsedFont::from_bytes(REGULAR_TTF, 0, &mut Vec::new())?;
            let bold = ParsedFont::from_bytes(BOLD_TTF, 0, &mut Vec::new())?;
            Some((regular, bold))
        })
        .as_ref()
        .ok_or_else(|| IncidentsError::Io(std::io::Error::other("the embedded font is unreadable")))
}

/// What the sheet needs besides the incident: the reader's language, zone and labels.
pub struct SheetContext<'a> {
    pub lang: Lang,
    pub tz: Tz,
    pub domains: &'a Domains,
    /// A label by key (`incidents_export.title`); returns the key itself when missing.
    pub text: &'a dyn Fn(&str) -> String,
}

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const MARGIN: f32 = 18.0;
const BOTTOM: f32 = 16.0;
/// The width of the labels' column.
const LABEL_W: f32 = 60.0;

#[derive(Clone, Copy)]
enum Face {
    Regular,
    Bold,
}

struct Sheet<'f> {
    fonts: &'f (ParsedFont, ParsedFont),
    handles: (PdfFontHandle, PdfFontHandle),
    pages: Vec<Vec<Op>>,
    /// Distance from the top of the page, in mm.
    y: f32,
    footer: String,
}

fn mm_to_pt(mm: f32) -> Pt {
    Mm(mm).into_pt()
}

fn rgb(r: f32, g: f32, b: f32) -> Color {
    Color::Rgb(Rgb::new(r, g, b, None))
}

impl<'f> Sheet<'f> {
    fn font(&self, face: Face) -> (&ParsedFont, PdfFontHandle) {
        match face {
            Face::Regular => (&self.fonts.0, self.handles.0.clone()),
            Face::Bold => (&self.fonts.1, self.handles.1.clone()),
        }
    }

    /// Width of `s` in mm at `size` points.
    fn width(&self, face: Face, size: f32, s: &str) -> f32 {
        let (font, _) = self.font(face);
        let upem = f32::from(font.units_per_em.max(1));
        let units: f32 = s
            .chars()
            .map(|c| {
                font.lookup_glyph_index(u32::from(c))
                    .and_then(|g| font.get_glyph_width(g))
                    .map_or(upem / 2.0, f32::from)
            })
            .sum();
        units / upem * size * 25.4 / 72.0
    }

    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Breaks the page when `h` mm do not fit any more.
    fn need(&mut self, h: f32) {
        if self.y + h > PAGE_H - BOTTOM {
            self.new_page();
        }
    }

    fn put(&mut self, x: f32, face: Face, size: f32, color: Color, s: &str) {
        let (_, handle) = self.font(face);
        let y = PAGE_H - self.y;
        self.page().extend([
            Op::StartTextSection,
            Op::SetFont {
                font: handle,
                size: Pt(size),
            },
            Op::SetFillColor { col: color },
            Op::SetTextCursor {
                pos: Point {
                    x: mm_to_pt(x),
                    y: mm_to_pt(y),
                },
            },
            Op::ShowText {
                items: vec![TextItem::Text(s.to_owned())],
            },
            Op::EndTextSection,
        ]);
    }

    /// Lines of `text` that fit in `width` mm (words cut only when one alone is too wide).
    fn wrap(&self, face: Face, size: f32, width: f32, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        // Tabs as spaces; other control characters have no glyph.
        let text: String = text
            .replace("\r\n", "\n")
            .replace(['\r', '\x0c'], "\n")
            .replace('\t', "    ")
            .chars()
            .filter(|c| *c == '\n' || !c.is_control())
            .collect();
        for para in text.split('\n') {
            let mut line = String::new();
            for word in para.split(' ') {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if self.width(face, size, &candidate) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                }
                // A word wider than the line: cut it.
                let mut piece = String::new();
                for c in word.chars() {
                    piece.push(c);
                    if self.width(face, size, &piece) > width && piece.chars().count() > 1 {
                        piece.pop();
                        out.push(std::mem::take(&mut piece));
                        piece.push(c);
                    }
                }
                line = piece;
            }
            out.push(line);
        }
        out
    }

    /// A wrapped paragraph at `x`, breaking pages between lines.
    fn paragraph(&mut self, x: f32, face: Face, size: f32, text: &str) {
        let lh = size * 0.3528 * 1.35;
        let width = PAGE_W - MARGIN - x;
        for line in self.wrap(face, size, width, text) {
            self.need(lh);
            self.y += lh;
            self.put(x, face, size, rgb(0.0, 0.0, 0.0), &line);
        }
    }

    fn heading(&mut self, text: &str) {
        self.need(14.0);
        self.y += 8.0;
        self.put(MARGIN, Face::Bold, 12.0, rgb(0.1, 0.2, 0.4), text);
        self.y += 1.8;
        let y = PAGE_H - self.y;
        self.page().extend([
            Op::SetOutlineColor {
                col: rgb(0.6, 0.65, 0.75),
            },
            Op::SetOutlineThickness { pt: Pt(0.6) },
            Op::DrawLine {
                line: Line {
                    points: vec![
                        LinePoint {
                            p: Point {
                                x: mm_to_pt(MARGIN),
                                y: mm_to_pt(y),
                            },
                            bezier: false,
                        },
                        LinePoint {
                            p: Point {
                                x: mm_to_pt(PAGE_W - MARGIN),
                                y: mm_to_pt(y),
                            },
                            bezier: false,
                        },
                    ],
                    is_closed: false,
                },
            },
        ]);
    }

    /// `label: value` on one or more lines, the value wrapped beside the label.
    fn field(&mut self, label: &str, value: &str) {
        let lh = 10.0 * 0.3528 * 1.35;
        let lines = self.wrap(Face::Regular, 10.0, PAGE_W - 2.0 * MARGIN - LABEL_W, value);
        for (n, line) in lines.iter().enumerate() {
            self.need(lh);
            self.y += lh;
            if n == 0 {
                self.put(MARGIN, Face::Bold, 10.0, rgb(0.25, 0.25, 0.25), label);
            }
            self.put(
                MARGIN + LABEL_W,
                Face::Regular,
                10.0,
                rgb(0.0, 0.0, 0.0),
                line,
            );
        }
    }

    /// The criticality: a coloured swatch, then its name.
    fn criticality(&mut self, label: &str, value: &str, color: Color) {
        let lh = 10.0 * 0.3528 * 1.35;
        self.need(lh);
        self.y += lh;
        self.put(MARGIN, Face::Bold, 10.0, rgb(0.25, 0.25, 0.25), label);
        self.swatch(MARGIN + LABEL_W, color);
        self.put(
            MARGIN + LABEL_W + 12.0,
            Face::Regular,
            10.0,
            rgb(0.0, 0.0, 0.0),
            value,
        );
    }

    fn swatch(&mut self, x: f32, color: Color) {
        let y = PAGE_H - self.y;
        self.page().extend([
            Op::SetFillColor { col: color },
            Op::DrawRectangle {
                rectangle: Rect {
                    mode: Some(PaintMode::Fill),
                    ..Rect::from_xywh(mm_to_pt(x), mm_to_pt(y - 0.6), mm_to_pt(9.0), mm_to_pt(3.6))
                },
            },
        ]);
    }
}

/// `2 h 05 min`, `3 d 4 h`, `45 s`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

fn local(t: &DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// The PDF sheet of one incident.
pub fn sheet(full: &IncidentFull, ctx: &SheetContext<'_>) -> Result<Vec<u8>, IncidentsError> {
    let fonts = fonts()?;
    let i = &full.incident;
    let t = |k: &str| (ctx.text)(&format!("incidents_export.{k}"));
    // A label of the incidents' pages, or the raw value when there is none.
    let label = |group: &str, value: &str| {
        let key = format!("incidents.{group}.{value}");
        let s = (ctx.text)(&key);
        if s == key { value.to_owned() } else { s }
    };
    let when =
        |v: &Option<DateTime<Utc>>| v.as_ref().map_or_else(|| t("none"), |v| local(v, ctx.tz));
    let mut s = Sheet {
        fonts,
        handles: (
            PdfFontHandle::External(FontId(PLACEHOLDER_REGULAR.to_owned())),
            PdfFontHandle::External(FontId(PLACEHOLDER_BOLD.to_owned())),
        ),
        pages: Vec::new(),
        y: MARGIN,
        footer: format!(
            "{} {} · {} {}",
            t("sheet_title"),
            i.reference,
            t("printed_at"),
            local(&Utc::now(), ctx.tz)
        ),
    };
    s.new_page();
    // Header.
    s.y += 5.0;
    s.put(
        MARGIN,
        Face::Regular,
        10.0,
        rgb(0.35, 0.35, 0.35),
        &t("sheet_title"),
    );
    s.y += 2.0;
    s.paragraph(MARGIN, Face::Bold, 12.0, &i.reference);
    s.y += 1.0;
    s.paragraph(MARGIN, Face::Bold, 16.0, &i.title);
    s.y += 2.0;
    let domain = ctx.domains.get(&i.domain).map_or_else(
        || i.domain.clone(),
        |d| match ctx.lang {
            Lang::Fr => d.label_fr.clone(),
            Lang::En => d.label_en.clone(),
        },
    );
    s.field(&t("state"), &label("states", &i.state));
    let crit_color = match i.criticality.as_str() {
        "red" => rgb(0.80, 0.10, 0.10),
        "orange" => rgb(0.95, 0.55, 0.05),
        _ => rgb(0.15, 0.60, 0.20),
    };
    s.criticality(
        &t("criticality"),
        &label("criticalities", &i.criticality),
        crit_color,
    );
    s.field(&t("domain"), &domain);
    s.field(
        &t("category"),
        if i.category.is_empty() {
            "—"
        } else {
            &i.category
        },
    );
    s.field(&t("detection"), &label("detections", &i.detection));
    s.field(&t("opener"), &i.opener_login);
    s.field(&t("opened_at"), &local(&i.opened_at, ctx.tz));
    s.field(&t("resolved_at"), &when(&i.resolved_at));
    s.field(&t("closed_at"), &when(&i.closed_at));
    s.field(
        &t("time_to_acknowledge"),
        &i.time_to_acknowledge_secs
            .map_or_else(|| t("none"), duration),
    );
    s.field(
        &t("time_to_resolve"),
        &i.time_to_resolve_secs.map_or_else(|| t("none"), duration),
    );
    s.field(&t("minutes_spent"), &duration(full.minutes_spent * 60));
    s.field(&t("time_zone"), ctx.tz.name());

    s.heading(&t("description"));
    s.paragraph(
        MARGIN,
        Face::Regular,
        10.0,
        if i.description.is_empty() {
            "—"
        } else {
            &i.description
        },
    );
    s.heading(&t("comments"));
    s.paragraph(
        MARGIN,
        Face::Regular,
        10.0,
        if i.comments.is_empty() {
            "—"
        } else {
            &i.comments
        },
    );

    s.heading(&t("people"));
    if full.people.is_empty() {
        s.paragraph(MARGIN, Face::Regular, 10.0, &t("none"));
    }
    for p in &full.people {
        s.paragraph(
            MARGIN,
            Face::Regular,
            10.0,
            &format!(
                "{} — {} ({})",
                p.login,
                label("people_kinds", &p.kind),
                local(&p.added_at, ctx.tz)
            ),
        );
    }

    s.heading(&t("resolutions"));
    if full.resolutions.is_empty() {
        s.paragraph(MARGIN, Face::Regular, 10.0, &t("none"));
    }
    for r in &full.resolutions {
        s.y += 1.5;
        s.paragraph(
            MARGIN,
            Face::Bold,
            10.0,
            &format!(
                "{} · {} · {} · {}",
                local(&r.at, ctx.tz),
                r.author_login,
                duration(r.minutes * 60),
                if r.is_final {
                    t("final")
                } else {
                    t("not_final")
                }
            ),
        );
        s.paragraph(MARGIN + 4.0, Face::Regular, 10.0, &r.text);
    }

    s.heading(&t("timeline"));
    for e in &full.timeline {
        let mut line = format!(
            "{} · {} · {}",
            local(&e.at, ctx.tz),
            e.actor_login.as_deref().unwrap_or("—"),
            label("kinds", &e.kind)
        );
        if let (Some(from), Some(to)) = (&e.from_state, &e.to_state)
            && from != to
        {
            line.push_str(&format!(
                " ({} → {})",
                label("states", from),
                label("states", to)
            ));
        }
        s.paragraph(MARGIN, Face::Regular, 9.0, &line);
    }

    s.heading(&t("attachments"));
    if full.attachments.is_empty() {
        s.paragraph(MARGIN, Face::Regular, 10.0, &t("none"));
    }
    for a in &full.attachments {
        s.paragraph(
            MARGIN,
            Face::Regular,
            10.0,
            &format!(
                "{} ({}, {} {})",
                a.file_name,
                a.content_type,
                a.size,
                t("bytes")
            ),
        );
    }

    // Footers, now that the page count is known.
    let count = s.pages.len();
    let footer = s.footer.clone();
    for n in 0..count {
        let text = format!("{footer} · {} {}/{count}", t("page"), n + 1);
        let saved = s.y;
        s.y = PAGE_H - 8.0;
        let (_, handle) = s.font(Face::Regular);
        let ops = [
            Op::StartTextSection,
            Op::SetFont {
                font: handle,
                size: Pt(8.0),
            },
            Op::SetFillColor {
                col: rgb(0.4, 0.4, 0.4),
            },
            Op::SetTextCursor {
                pos: Point {
                    x: mm_to_pt(MARGIN),
                    y: mm_to_pt(8.0),
                },
            },
            Op::ShowText {
                items: vec![TextItem::Text(text)],
            },
            Op::EndTextSection,
        ];
        s.pages[n].extend(ops);
        s.y = saved;
    }
    let mut doc = PdfDocument::new(&format!("{} {}", i.reference, i.title));
    let mut pages = s.pages;
    let regular = embed(
        &mut doc,
        &fonts.0,
        REGULAR_TTF,
        "DejaVuSans",
        PLACEHOLDER_REGULAR,
        &pages,
    )?;
    let bold = embed(
        &mut doc,
        &fonts.1,
        BOLD_TTF,
        "DejaVuSans-Bold",
        PLACEHOLDER_BOLD,
        &pages,
    )?;
    for ops in &mut pages {
        for op in ops.iter_mut() {
            if let Op::SetFont {
                font: PdfFontHandle::External(id),
                ..
            } = op
            {
                if id.0 == PLACEHOLDER_REGULAR {
                    *id = regular.clone();
                } else if id.0 == PLACEHOLDER_BOLD {
                    *id = bold.clone();
                }
            }
        }
    }
    let pages = pages
        .into_iter()
        .map(|ops| PdfPage::new(Mm(PAGE_W), Mm(PAGE_H), ops))
        .collect();
    let mut warnings = Vec::new();
    Ok(doc
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings))
}

const PLACEHOLDER_REGULAR: &str = "vigie-regular";
const PLACEHOLDER_BOLD: &str = "vigie-bold";

/// Adds to `doc` the subset of `font` (whose file is `source`) that the text set in `placeholder` uses; returns its id.
fn embed(
    doc: &mut PdfDocument,
    font: &ParsedFont,
    source: &[u8],
    name: &str,
    placeholder: &str,
    pages: &[Vec<Op>],
) -> Result<FontId, IncidentsError> {
    let mut chars = std::collections::BTreeSet::new();
    for ops in pages {
        let mut current = false;
        for op in ops {
            match op {
                Op::SetFont {
                    font: PdfFontHandle::External(id),
                    ..
                } => current = id.0 == placeholder,
                Op::ShowText { items } if current => {
                    for item in items {
                        if let TextItem::Text(t) = item {
                            chars.extend(t.chars());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // Glyph 0 (.notdef) first, then the used glyphs, each once.
    let mut gids: Vec<u16> = chars
        .iter()
        .filter_map(|c| font.lookup_glyph_index(u32::from(*c)))
        .filter(|g| *g != 0)
        .collect::<std::collections::BTreeSet<u16>>()
        .into_iter()
        .collect();
    gids.insert(0, 0);
    let failed = |what: String| IncidentsError::Io(std::io::Error::other(what));
    let scope = allsorts::binary::read::ReadScope::new(source);
    let data = scope
        .read::<allsorts::font_data::FontData<'_>>()
        .map_err(|e| failed(format!("font: {e}")))?;
    let provider = data
        .table_provider(0)
        .map_err(|e| failed(format!("font: {e}")))?;
    let bytes = allsorts::subset::subset(
        &provider,
        &gids,
        &allsorts::subset::SubsetProfile::Pdf,
        allsorts::subset::CmapTarget::Unicode,
    )
    .map_err(|e| failed(format!("font subset: {e}")))?;
    let mut parsed = ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
        .ok_or_else(|| failed("font subset unreadable".to_owned()))?;
    // The `ABCDEF+` tag marks a subset (ISO 32000-1, 9.6.4); drawn from the glyph set.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for g in &gids {
        hash = (hash ^ u64::from(*g)).wrapping_mul(0x0100_0000_01b3);
    }
    let tag: String = (0..6)
        .map(|n| char::from(b'A' + ((hash >> (n * 8)) % 26) as u8))
        .collect();
    parsed.font_name = Some(format!("{tag}+{name}"));
    Ok(doc.add_font(&parsed))
}

/// The file name of an incident's sheet or export: `incident-2026-NET-12.pdf`.
pub fn file_name(reference: &str, ext: &str) -> String {
    let safe: String = reference
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("incident-{safe}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(7500), "2 h 05 min");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3 d 4 h");
        assert_eq!(file_name("2026/NET/12", "pdf"), "incident-2026-NET-12.pdf");
    }
}
