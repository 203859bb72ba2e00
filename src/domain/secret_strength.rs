//! How guessable a configured signing secret is.
//!
//! The estimate is the length of the shortest description of the secret
//! in a few cheap "guessing languages", in bits: a character costs
//! log2 of the alphabet its character classes span, while a repetition of
//! earlier text, a run like `abcd` / `9876` / `aaaa`, or a word from the
//! common-password list each cost only a few bits. This is the idea of
//! zxcvbn without its megabytes of dictionaries: enough to tell 32 random
//! bytes from `changemechangeme…`, which is what it is for. It estimates
//! from above for text it has no model of (a passphrase of uncommon
//! words scores like random letters), so it never proves a secret strong;
//! it refuses the obviously weak ones.

use super::common_passwords;

/// What a signing key needs: about the strength of a 128-bit random key.
pub const MIN_SECRET_BITS: f64 = 128.0;

/// Beyond this many characters, the rest is not looked at: 256 characters
/// from any alphabet carry far more than [`MIN_SECRET_BITS`] unless they
/// are repetitive, which shows within them. Bounds the cubic search.
const ANALYSED_CHARS: usize = 256;

/// Words from the common-password list are matched with 4 to this many
/// characters.
const LONGEST_WORD: usize = 16;

/// Estimated bits of entropy of `secret`.
pub fn estimated_entropy_bits(secret: &str) -> f64 {
    let chars: Vec<char> = secret.chars().take(ANALYSED_CHARS).collect();
    let n = chars.len();
    if n == 0 {
        return 0.0;
    }
    let per_char = alphabet_size(&chars).log2();
    let word_bits = (common_passwords().len() as f64).log2();
    let length_bits = (n as f64).log2();
    // cheapest[i]: the fewest bits that describe chars[..i].
    let mut cheapest = vec![f64::INFINITY; n + 1];
    cheapest[0] = 0.0;
    for i in 0..n {
        let here = cheapest[i];
        let mut relax = |end: usize, bits: f64| {
            if here + bits < cheapest[end] {
                cheapest[end] = here + bits;
            }
        };
        relax(i + 1, per_char);
        // A copy of earlier text (it may overlap itself: `abcabcabc`): which
        // position and how long.
        let longest_copy = (0..i)
            .map(|from| {
                (0..n - i)
                    .take_while(|&k| chars[from + k] == chars[i + k])
                    .count()
            })
            .max()
            .unwrap_or(0);
        for len in 3..=longest_copy {
            relax(i + len, (i as f64).log2() + length_bits);
        }
        // A run with a constant step of -1, 0 or +1 (`abcd`, `4321`, `zzzz`):
        // its first character, the step and the length.
        let run = run_length(&chars[i..]);
        for len in 3..=run {
            relax(i + len, per_char + 1.6 + length_bits);
        }
        // A common password as a part, in any case.
        for len in 4..=LONGEST_WORD.min(n - i) {
            let word: String = chars[i..i + len].iter().collect();
            let lower = word.to_lowercase();
            if common_passwords().contains(lower.as_str()) {
                let case_bits = if word == lower { 0.0 } else { 1.0 };
                relax(i + len, word_bits + case_bits);
            }
        }
    }
    cheapest[n]
}

/// How many characters a guesser must consider for each position: the
/// sizes of the character classes the secret uses. Text of hex digits
/// only counts as hex, since that is how random keys are written.
fn alphabet_size(chars: &[char]) -> f64 {
    if chars.iter().all(char::is_ascii_hexdigit) {
        return 16.0;
    }
    let uses = |class: fn(&char) -> bool| chars.iter().any(class);
    [
        (uses(char::is_ascii_lowercase), 26.0),
        (uses(char::is_ascii_uppercase), 26.0),
        (uses(char::is_ascii_digit), 10.0),
        (uses(|c| c.is_ascii() && !c.is_ascii_alphanumeric()), 33.0),
        (uses(|c| !c.is_ascii()), 100.0),
    ]
    .iter()
    .filter(|(used, _)| *used)
    .map(|(_, size)| size)
    .sum()
}

/// The length of the run at the start of `chars` whose code points step by
/// the same -1, 0 or +1.
fn run_length(chars: &[char]) -> usize {
    if chars.len() < 2 {
        return chars.len();
    }
    let step = |a: char, b: char| i64::from(u32::from(b)) - i64::from(u32::from(a));
    let first = step(chars[0], chars[1]);
    if first.abs() > 1 {
        return 1;
    }
    2 + chars[1..]
        .windows(2)
        .take_while(|w| step(w[0], w[1]) == first)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{OsRandom, random_hex};

    fn bits(s: &str) -> f64 {
        estimated_entropy_bits(s)
    }

    #[test]
    fn random_keys_as_generated_pass_with_a_wide_margin() {
        // 32 random bytes as 64 hex characters: 256 bits; chance repeats and
        // runs of three in random hex cost a few bits at most.
        let weakest = (0..2000)
            .map(|_| bits(&random_hex(&OsRandom, 32)))
            .fold(f64::INFINITY, f64::min);
        assert!(weakest > 200.0, "{weakest}");
    }

    #[test]
    fn random_base64_and_mixed_text_count_their_classes() {
        use base64::Engine;
        let bytes: Vec<u8> = (0..32).map(|i| (i * 73 + 11) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(bits(&b64) > MIN_SECRET_BITS, "{}", bits(&b64));
        assert_eq!(alphabet_size(&['a', 'F', '0']), 16.0);
        assert_eq!(alphabet_size(&['a', 'g']), 26.0);
        assert_eq!(alphabet_size(&['a', 'G', '0', '-']), 95.0);
    }

    #[test]
    fn repeated_runs_and_words_are_cheap() {
        for weak in [
            "a".repeat(40),
            "changemechangemechangemechangeme".to_owned(),
            "ChangeMeChangeMeChangeMeChangeMe".to_owned(),
            "0123456789abcdef0123456789abcdef0123456789abcdef".to_owned(),
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz".to_owned(),
            "passwordpasswordpassword1234567890".to_owned(),
            "zyxwvutsrqponmlkjihgfedcba9876543210".to_owned(),
            "ab".repeat(64),
        ] {
            assert!(bits(&weak) < 64.0, "{weak}: {}", bits(&weak));
        }
    }

    #[test]
    fn the_estimate_grows_with_real_randomness() {
        assert_eq!(bits(""), 0.0);
        // Hex: 4 bits per character unless patterned.
        assert!((bits("9f3a") - 16.0).abs() < 1e-9);
        let key = random_hex(&OsRandom, 32);
        assert!(bits(&key[..16]) < bits(&key));
        // Only the first 256 characters count.
        let first_256 = key.repeat(4);
        assert_eq!(
            bits(&format!("{first_256}{}", "x".repeat(1000))),
            bits(&first_256)
        );
    }

    #[test]
    fn runs_step_by_at_most_one() {
        assert_eq!(run_length(&['a', 'b', 'c', 'x']), 3);
        assert_eq!(run_length(&['9', '8', '7', '6']), 4);
        assert_eq!(run_length(&['a', 'c', 'e']), 1);
        assert_eq!(run_length(&['q']), 1);
    }
}
