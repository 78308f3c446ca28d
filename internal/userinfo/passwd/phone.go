package passwd

// FormatPhone formats a GECOS phone number the way BSD finger does when the
// number is all ASCII digits:
//
//	4 digits  → x1234
//	5 digits  → x1-2345
//	7 digits  → 555-1234
//	10 digits → 555-123-9876
//	11 digits → +1-555-123-9876
//
// Anything else (other lengths, or any character that is not a digit) is
// returned verbatim, so users keep their own formatting.
func FormatPhone(s string) string {
	if s == "" {
		return s
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return s
		}
	}
	switch len(s) {
	case 4:
		return "x" + s
	case 5:
		return "x" + s[:1] + "-" + s[1:]
	case 7:
		return s[:3] + "-" + s[3:]
	case 10:
		return s[:3] + "-" + s[3:6] + "-" + s[6:]
	case 11:
		return "+" + s[:1] + "-" + s[1:4] + "-" + s[4:7] + "-" + s[7:]
	}
	return s
}
