# Start the service in another terminal first (`cargo run --release`), then paste this.
# It needs curl and python3. Every `# ->` line shows fields of the answer just printed;
# the test suite runs this very text against a started service and checks those fields.
BASE=${BASE:-http://localhost:8080}
PASSFOLD=${PASSFOLD:-"cargo run --release -q --"}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

KEYS=$($PASSFOLD merchant create --name "Кофейня Ромашка")
ADMIN=$(echo "$KEYS" | json '["admin_key"]')
POS=$(echo "$KEYS" | json '["pos_key"]')

curl -s "$BASE/readyz"; echo
curl -s -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/api-keys"; echo
curl -s -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
     -d '{"scope": "pos", "label": "till 2"}' "$BASE/api/v1/api-keys"; echo
# -> {"scope": "pos", "label": "till 2"}
curl -s "$BASE/metrics" | head -3
# interactive API docs, served offline: $BASE/docs/

# A loyalty program on the example template: 10 points per euro, two tiers, a welcome
# gift, and referrals paying 100 points to the referrer and 25 to the friend on the
# friend's first purchase of at least 10.00 EUR (at most 20 rewards a referrer a month).
PROGRAM=$(curl -s -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"name": "Coffee Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 10,
       "tiers": [{"name": "Bronze", "min_points": 0}, {"name": "Gold", "min_points": 1000, "multiplier": 1.5}],
       "welcome_points": 50,
       "referral": {"referrer_points": 100, "referee_points": 25, "trigger": "first_purchase",
                    "min_purchase": 1000, "monthly_cap": 20}}' \
  "$BASE/api/v1/programs" | json '["id"]')

# A member, and the member's pass
ANNA=$(curl -s -X POST -H "Authorization: Bearer $POS" -H 'content-type: application/json' \
  -d '{"name": "Анна Петрова", "email": "anna@example.com"}' "$BASE/api/v1/programs/$PROGRAM/members")
echo "$ANNA"
# -> {"points": 50, "tier": "Bronze"}
MEMBER=$(echo "$ANNA" | json '["id"]')
curl -s -o card.pkpass "$(echo "$ANNA" | json '["apple_pass_url"]')"
python3 -m zipfile -l card.pkpass | grep -c -e pass.json -e manifest.json -e signature
# -> 3

# At the till: the cashier scans the card; the barcode carries the card number
SCANNED=$(echo "$ANNA" | json '["card_number"]')
curl -s -H "Authorization: Bearer $POS" "$BASE/api/v1/members?card_number=$SCANNED" | json '["members"][0]["name"]'
# -> "Анна Петрова"

# A purchase of 45.99 EUR earns 459 points; retrying with the same Idempotency-Key
# returns the first answer (Idempotent-Replayed: true) and earns nothing more
for attempt in 1 2; do
  curl -s -X POST -H "Authorization: Bearer $POS" -H "Idempotency-Key: till1-0001" \
       -H 'content-type: application/json' -d '{"amount": 4599, "currency": "EUR"}' \
       "$BASE/api/v1/members/$MEMBER/purchases"; echo
done
# -> {"earned": 459, "points": 509, "tier": "Bronze"}
curl -s -X POST -H "Authorization: Bearer $POS" -H "Idempotency-Key: till1-0002" \
     -H 'content-type: application/json' -d '{"delta": -9, "reason": "a free biscuit"}' \
     "$BASE/api/v1/members/$MEMBER/points"; echo
# -> {"points": 500, "tier": "Bronze"}

# A gift card with 25.00 EUR; the till redeems 12.50 of it
CARD=$(curl -s -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"template": "gift-card-default", "currency": "EUR", "initial_balance": 2500}' "$BASE/api/v1/gift-cards")
GAN=$(echo "$CARD" | json '["gan"]')
PIN=$(echo "$CARD" | json '["pin"]')
curl -s -X POST -H "Authorization: Bearer $POS" -H "Idempotency-Key: till1-0003" \
     -H 'content-type: application/json' -d '{"amount": 1250, "currency": "EUR"}' \
     "$BASE/api/v1/gift-cards/$GAN/redeem"; echo
# -> {"balance": 1250, "currency": "EUR", "state": "active"}
# The customer checks the balance on the web with the PIN from the card
curl -s -X POST -H 'content-type: application/json' -d "{\"gan\": \"$GAN\", \"pin\": \"$PIN\"}" \
     "$BASE/api/v1/public/gift-cards/balance"; echo
# -> {"balance": 1250, "currency": "EUR", "state": "active"}

# Anna shares her referral link; Boris joins through it and makes a first purchase
REFERRAL=$(echo "$ANNA" | json '["referral_code"]')
BORIS=$(curl -s -X POST -H "Authorization: Bearer $POS" -H 'content-type: application/json' \
  -d "{\"name\": \"Борис\", \"email\": \"boris@example.com\", \"referral_code\": \"$REFERRAL\"}" \
  "$BASE/api/v1/programs/$PROGRAM/members")
echo "$BORIS" | json '["referral"]["status"]'
# -> "pending"
curl -s -X POST -H "Authorization: Bearer $POS" -H "Idempotency-Key: till1-0004" \
     -H 'content-type: application/json' -d '{"amount": 1200, "currency": "EUR"}' \
     "$BASE/api/v1/members/$(echo "$BORIS" | json '["id"]')/purchases"; echo
# -> {"earned": 120, "points": 195}
curl -s -H "Authorization: Bearer $POS" "$BASE/api/v1/members/$MEMBER/referrals"; echo
curl -s -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/programs/$PROGRAM/referral-stats"; echo
# -> {"joins": 1, "conversions": 1, "rewarded": 1}
curl -s -H "Authorization: Bearer $POS" "$BASE/api/v1/members/$MEMBER" | json '["points"]'
# -> 600
