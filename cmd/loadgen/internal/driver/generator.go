package driver

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// School is one school of the generated county: its code (S001…), what
// stages it teaches and whether it is rural.
type School struct {
	Code   string
	Name   string
	Stages []catalog.Stage
	Rural  bool
	// Boarding: the school has boarders.
	Boarding bool
	// Region is the 6-digit code of the county most of its students were registered in.
	Region string
}

// programWeights approximate the 2017 person-times of the bureau's report
// (boarding 4,503; high-school grant 3,235; vocational waiver 2,237; poverty
// extension, high-school waiver, preschool, vocational grant, Zihui).
// University programs are left out: no county school submits them.
var programWeights = map[string]int{
	"BOARDING_SUBSIDY":   4503,
	"HS_NATIONAL_GRANT":  3235,
	"VOC_TUITION_WAIVER": 2237,
	"POVERTY_EXTENSION":  1500,
	"HS_TUITION_WAIVER":  708,
	"PRESCHOOL_AID":      600,
	"VOC_NATIONAL_GRANT": 235,
	"ZIHUI_AWARD":        152,
}

// ageRange is the age in completed years at term start of a stage's students.
var ageRange = map[catalog.Stage][2]int{
	catalog.StagePreschool:  {3, 5},
	catalog.StagePrimary:    {6, 11},
	catalog.StageJunior:     {12, 14},
	catalog.StageHighSchool: {15, 17},
	catalog.StageVocational: {15, 18},
	catalog.StageUniversity: {18, 21},
}

// cardBINs are issuer prefixes of debit cards common in rural Hubei
// (Agricultural Bank, Postal Savings, Rural Commercial Bank, CCB, ICBC).
var cardBINs = []string{"622848", "621799", "623058", "621700", "622202"}

var surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")

var (
	boyChars   = []rune("伟强磊军勇杰涛斌浩宇轩俊博文明辉鹏飞鑫子梓睿航晨泽宏嘉豪锦天翔")
	girlChars  = []rune("芳娜敏静丽艳娟霞婷雪琳欣怡萱涵梦佳雨思诗悦可馨瑶紫琪若彤欢")
	fatherName = []string{"建国", "国强", "志刚", "建华", "海军", "红兵", "立新", "卫东", "德明", "永红", "长江", "春生", "德华", "光辉", "振华"}
	motherName = []string{"桂英", "秀兰", "玉兰", "春梅", "红霞", "丽华", "秀英", "凤英", "金花", "小红", "翠兰", "美玲"}
)

// GeneratorConfig configures a Generator.
type GeneratorConfig struct {
	// Schools is how many schools (S001 …) submit; default 20.
	Schools int
	// Term, e.g. 2017-autumn; it fixes the students' ages.
	Term string
	// Program, if set, is the only program generated (every school must be
	// able to submit it: POVERTY_EXTENSION fits all).
	Program string
	// Seed makes the run reproducible; it also offsets the ID numbers and
	// card numbers, so runs with different seeds do not collide.
	Seed uint64
}

// Generator produces valid, realistic applications. It is safe for
// concurrent use.
type Generator struct {
	cfg       GeneratorConfig
	policy    *policy.Policy
	termStart time.Time
	schools   []School

	mu       sync.Mutex
	rng      *rand.Rand
	perSpace map[idSpace]uint64
	cards    int64
	salt     uint64
}

// NewGenerator returns a generator for cfg.
func NewGenerator(cfg GeneratorConfig) (*Generator, error) {
	if cfg.Schools <= 0 {
		cfg.Schools = 20
	}
	term, err := catalog.ParseTerm(cfg.Term)
	if err != nil {
		return nil, err
	}
	book, err := seed.Book()
	if err != nil {
		return nil, err
	}
	pv, okP := book.Policy(cfg.Term)
	rv, okR := book.Register(cfg.Term)
	if !okP || !okR {
		return nil, fmt.Errorf("the seed policy is not in force for %s", cfg.Term)
	}
	if cfg.Program != "" {
		if _, ok := pv.Policy.Program(cfg.Program); !ok {
			return nil, fmt.Errorf("unknown program %q", cfg.Program)
		}
	}
	g := &Generator{
		cfg:       cfg,
		policy:    pv.Policy,
		termStart: policy.TermStart(term),
		rng:       rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		perSpace:  map[idSpace]uint64{},
		salt:      splitmix64(cfg.Seed),
	}
	// The register's schools in code order; the ones whose students the
	// generated programs cover (S900, the aid centre for university
	// students, is left out: university programs are not generated).
	var register []policy.School
	for _, sc := range rv.Register.AllSchools() {
		if !slices.Equal(sc.Stages, []catalog.Stage{catalog.StageUniversity}) {
			register = append(register, sc)
		}
	}
	if cfg.Schools > len(register) {
		return nil, fmt.Errorf("the school register has %d schools, not %d", len(register), cfg.Schools)
	}
	for _, sc := range register[:cfg.Schools] {
		s := School{Code: sc.Code, Name: sc.Name, Stages: slices.Clone(sc.Stages), Rural: sc.Rural, Boarding: sc.Boarding, Region: sc.Region}
		if cfg.Program != "" && len(g.programsFor(s, cfg.Program)) == 0 {
			return nil, fmt.Errorf("program %s does not fit school %s (%s); pick POVERTY_EXTENSION or leave -program empty", cfg.Program, sc.Code, sc.Name)
		}
		g.schools = append(g.schools, s)
	}
	return g, nil
}

// Schools returns the generated schools.
func (g *Generator) Schools() []School { return slices.Clone(g.schools) }

// SchoolCodes returns the school codes, S001 ….
func (g *Generator) SchoolCodes() []string {
	out := make([]string, len(g.schools))
	for i, s := range g.schools {
		out[i] = s.Code
	}
	return out
}

// Term returns the term applications are for.
func (g *Generator) Term() string { return g.cfg.Term }

// programsFor lists the programs (with their stages) students of s can get;
// only restricts to only when set.
func (g *Generator) programsFor(s School, only string) []programChoice {
	var out []programChoice
	for code, w := range programWeights {
		if only != "" && code != only {
			continue
		}
		p, _ := g.policy.Program(code)
		if (p.RequiresRural && !s.Rural) || (p.RequiresBoarding && !s.Boarding) {
			continue
		}
		for _, st := range s.Stages {
			if p.Covers(st) {
				out = append(out, programChoice{code: code, stage: st, weight: w})
			}
		}
	}
	if only != "" {
		for i := range out {
			out[i].weight = 1
		}
	}
	slices.SortFunc(out, func(a, b programChoice) int {
		if a.code != b.code {
			if a.code < b.code {
				return -1
			}
			return 1
		}
		if a.stage < b.stage {
			return -1
		}
		if a.stage > b.stage {
			return 1
		}
		return 0
	})
	return out
}

type programChoice struct {
	code   string
	stage  catalog.Stage
	weight int
}

// Applications returns n new applications of school (index into Schools()).
func (g *Generator) Applications(school int, n int) []*applicationv1.NewApplication {
	s := g.schools[school]
	choices := g.programsFor(s, g.cfg.Program)
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*applicationv1.NewApplication, 0, n)
	for range n {
		pick := g.rng.IntN(total)
		var c programChoice
		for _, c = range choices {
			if pick < c.weight {
				break
			}
			pick -= c.weight
		}
		out = append(out, g.application(s, c))
	}
	return out
}

// application builds one application; g.mu is held.
func (g *Generator) application(s School, c programChoice) *applicationv1.NewApplication {
	p, _ := g.policy.Program(c.code)
	idNumber, male := g.idNumber(s, c.stage)
	surname := string(surnames[g.rng.IntN(len(surnames))])
	name := surname + g.givenName(male)
	account := name
	if age := ageRange[c.stage]; age[0] < 18 {
		// Minors are paid into a guardian's card.
		if g.rng.IntN(10) < 7 {
			account = surname + fatherName[g.rng.IntN(len(fatherName))]
		} else {
			account = string(surnames[g.rng.IntN(len(surnames))]) + motherName[g.rng.IntN(len(motherName))]
		}
	}
	compulsory := c.stage == catalog.StagePrimary || c.stage == catalog.StageJunior
	a := &applicationv1.NewApplication{
		StudentIdNumber: idNumber,
		StudentName:     name,
		Stage:           string(c.stage),
		ProgramCode:     c.code,
		Rural:           s.Rural,
		Boarding:        s.Boarding && compulsory && g.rng.IntN(2) == 0,
		RegisteredPoor:  g.rng.IntN(100) < 35,
		BankCardNumber:  g.cardNumber(),
		AccountName:     account,
	}
	if p.RequiresBoarding {
		a.Boarding = true
	}
	if p.RequiresRegisteredPoor {
		a.RegisteredPoor = true
	}
	return a
}

// idNumber returns a valid identity number, unique within the run (and
// across runs with different seeds), registered in the school's home county,
// whose birth date fits the stage. It also says whether the student is male.
func (g *Generator) idNumber(s School, stage catalog.Stage) (string, bool) {
	ages := ageRange[stage]
	// Born after termStart-(max+1) years and on or before termStart-min years.
	latest := g.termStart.AddDate(-ages[0], 0, 0)
	earliest := g.termStart.AddDate(-(ages[1] + 1), 0, 1)
	days := uint64(latest.Sub(earliest).Hours()/24) + 1
	// One index space per (county, stage): day × sequence, walked with a
	// multiplicative permutation so consecutive students look unrelated.
	// The birth years of stages overlap (high school and vocational), so
	// each stage owns its own slice of the 3-digit sequence.
	capacity := days * seqsPerStage
	key := idSpace{s.Region, stage}
	k := g.perSpace[key]
	g.perSpace[key]++
	x := (k%capacity + g.salt%capacity) % capacity
	x = (x * 2147483647) % capacity // 2^31-1 is prime, so coprime with capacity: a bijection
	seq := stageIndex(stage)*seqsPerStage + int(x%seqsPerStage)
	birth := earliest.AddDate(0, 0, int(x/seqsPerStage)) //nolint:gosec // G115: x < capacity = days*seqsPerStage, so this is a day offset below days
	// The 17th digit (the sequence's last) is odd for men and even for women.
	return idnumber.Generate(s.Region, birth, seq), seq%2 == 1
}

// seqsPerStage is each stage's share of the 1000 sequence numbers.
const seqsPerStage = 1000 / 6

func stageIndex(s catalog.Stage) int {
	switch s {
	case catalog.StagePreschool:
		return 0
	case catalog.StagePrimary:
		return 1
	case catalog.StageJunior:
		return 2
	case catalog.StageHighSchool:
		return 3
	case catalog.StageVocational:
		return 4
	default:
		// StageUniversity, the sixth stage, takes the last share.
		return 5
	}
}

type idSpace struct {
	region string
	stage  catalog.Stage
}

func (g *Generator) givenName(male bool) string {
	chars := girlChars
	if male {
		chars = boyChars
	}
	n := 1 + g.rng.IntN(2)
	out := make([]rune, n)
	for i := range out {
		out[i] = chars[g.rng.IntN(len(chars))]
	}
	return string(out)
}

// cardNumber returns a Luhn-valid 19-digit card number, unique in the run.
func (g *Generator) cardNumber() string {
	const space = 1_000_000_000_000 // 12 digits of body
	k := g.cards
	g.cards++
	body := (uint64(k)*7919 + g.salt) % space //nolint:gosec // G115: k counts the cards made so far, never negative; 7919 is prime, coprime with 10^12
	return pii.GenerateCardNumber(cardBINs[k%int64(len(cardBINs))], int64(body), 19)
}

// splitmix64 spreads seeds over the whole range, so that runs with nearby
// seeds start far apart in the ID and card number spaces.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
