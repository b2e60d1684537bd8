package segment

import "strings"

// lookAlikes maps characters outside the GSM 7-bit alphabet to look-alikes
// inside it. Every key is outside the alphabet, so Transliterate leaves text
// that already fits unchanged.
var lookAlikes = map[rune]string{
	// Quotes and apostrophes.
	'‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'", '´': "'", '`': "'", '‹': "'", '›': "'",
	'“': `"`, '”': `"`, '„': `"`, '‟': `"`, '″': `"`, '«': `"`, '»': `"`,
	// Dashes and the minus sign.
	'‐': "-", '‑': "-", '‒': "-", '–': "-", '—': "-", '―': "-", '−': "-",
	// Ellipsis and other punctuation.
	'…': "...", '⁄': "/", 'ˆ': "^", '˜': "~",
	// Spaces: no-break, typographic, ideographic; tab.
	'\u00A0': " ", '\u2000': " ", '\u2001': " ", '\u2002': " ", '\u2003': " ",
	'\u2004': " ", '\u2005': " ", '\u2006': " ", '\u2007': " ", '\u2008': " ",
	'\u2009': " ", '\u200A': " ", '\u202F': " ", '\u205F': " ", '\u3000': " ",
	'\t': " ",
	// Line and paragraph separators.
	'\u2028': "\n", '\u2029': "\n",
	// Invisible characters: soft hyphen, zero-width space and joiners, BOM.
	'\u00AD': "", '\u200B': "", '\u200C': "", '\u200D': "", '\u2060': "", '\uFEFF': "",
	// The GSM alphabet has only the capital C with cedilla.
	'ç': "Ç",
	// Greek capitals that look like Latin ones, as Greek handsets send them.
	'Α': "A", 'Β': "B", 'Ε': "E", 'Ζ': "Z", 'Η': "H", 'Ι': "I", 'Κ': "K",
	'Μ': "M", 'Ν': "N", 'Ο': "O", 'Ρ': "P", 'Τ': "T", 'Υ': "Y", 'Χ': "X",
}

// Transliterate replaces look-alike characters that the GSM 7-bit alphabet
// lacks (smart quotes, en and em dashes, the ellipsis, no-break and other
// spaces, zero-width characters, ...) with ones it has. Other characters are
// kept, so the result may still need UCS-2.
func Transliterate(s string) string {
	var b strings.Builder
	copied := 0 // s[:copied] is in b
	for i, r := range s {
		rep, ok := lookAlikes[r]
		if !ok {
			continue
		}
		if copied == 0 {
			b.Grow(len(s) + 8)
		}
		b.WriteString(s[copied:i])
		b.WriteString(rep)
		copied = i + len(string(r))
	}
	if b.Len() == 0 && copied == 0 {
		return s
	}
	b.WriteString(s[copied:])
	return b.String()
}
